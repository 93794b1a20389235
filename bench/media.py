"""Range-request throughput of GET /song/{id}.mp3 against nginx (Debian's) serving the same file from the same
directory, both driven by wrk at N connections with a 64 KiB range; one API process and one nginx worker. A third
row puts nginx in front of the API with `SMOL_MEDIA_ACCEL_PREFIX`: the API checks and counts, nginx sends the bytes.

    .venv/bin/python bench/media.py [--clients 50] [--seconds 10]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import wrk  # noqa: E402
from stack import bench_stack  # noqa: E402

from activities.providers.local.music import encode_mp3, plan, render  # noqa: E402
from commands.stack import wait_for_port  # noqa: E402
from tests.conftest import free_port  # noqa: E402

RANGE_SCRIPT = 'wrk.headers["Range"] = "bytes=65536-131071"\n'
NGINX_CONF = """
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    types {{ audio/mpeg mp3; }}
    client_body_temp_path {base}/body; proxy_temp_path {base}/proxy; fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /song/ {{ alias {objects}/; }}
    }}
    server {{
        listen 127.0.0.1:{front_port};
        location /_media/ {{ internal; etag off; add_header ETag $upstream_http_etag; alias {objects}/; }}
        location / {{ proxy_pass {api}; }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not Path(nginx).exists():
        raise SystemExit("needs wrk and nginx (Debian: apt-get install wrk nginx-light)")
    base = Path(tempfile.mkdtemp(prefix="smol-media-"))
    objects = base / "objects"
    objects.mkdir()
    base.chmod(0o755)  # nginx's workers run as another user
    arrangement = plan(["pop"], 7)
    song = encode_mp3(render(arrangement, 30, 0, 7), title="bench", artist="b", arrangement=arrangement, cover_png=None)
    (objects / "benchsong.mp3").write_bytes(song)
    script = base / "range.lua"
    script.write_text(RANGE_SCRIPT)
    path = "/song/benchsong.mp3"

    def measure(url: str) -> str:
        return wrk(url, args.clients, args.seconds, script)

    print(f"cores: {os.cpu_count()}, a {len(song) // 1024} KiB MP3, 64 KiB ranges, {args.clients} connections, "
          f"{args.seconds}s each")  # fmt: skip
    with bench_stack(worker=False, object_store=str(objects)) as plain:
        print(f"  API alone          {measure(plain['url'] + path)}")
    with bench_stack(worker=False, object_store=str(objects), media_accel_prefix="/_media/") as accel:
        port, front_port = free_port(), free_port()
        conf = NGINX_CONF.format(base=base, port=port, front_port=front_port, objects=objects, api=accel["url"])
        (base / "nginx.conf").write_text(conf)
        server = subprocess.Popen([nginx, "-c", str(base / "nginx.conf"), "-g", "daemon off;"])
        try:
            wait_for_port("127.0.0.1", front_port, proc=server)
            print(f"  nginx alone        {measure(f'http://127.0.0.1:{port}{path}')}")
            print(f"  nginx → API accel  {measure(f'http://127.0.0.1:{front_port}{path}')}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
