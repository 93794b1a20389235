"""Range-request throughput of GET /song/{id}.mp3 against nginx (Debian's) serving the same file from the same
directory, both driven by wrk at N connections with a 64 KiB range; one API process and one nginx worker. A third
row puts nginx in front of the API with `SMOL_MEDIA_ACCEL_PREFIX`: the API checks and counts, nginx sends the bytes.
Then the production path, nginx configured as the README says (api/nginx/smol.conf.template): a play's later ranges
(sent by nginx once the API said yes, its answer kept 4 s) and its first range (through the API, which counts it).

    .venv/bin/python bench/media.py [--clients 50] [--seconds 10]
"""

import argparse
import asyncio
import os
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import wrk  # noqa: E402
from stack import bench_stack  # noqa: E402

from activities.providers.local.music import encode_mp3, plan, render  # noqa: E402
from commands.stack import ROOT, wait_for_port  # noqa: E402
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
    {production}
}}
"""
FIRST_RANGE_SCRIPT = 'wrk.headers["Range"] = "bytes=0-65535"\n'


async def publish(database_url: str) -> None:
    """The song's smol, finished and public: the API serves a song only to those who may see its smol."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO smols (id, title, song_1, song_2, address) VALUES ($1, 'bench', 'benchsong', "
                           "'benchsong2', 'GBENCH')", "b" * 64)  # fmt: skip
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not Path(nginx).exists():
        raise SystemExit("needs wrk and nginx (Debian: apt-get install wrk nginx)")
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

    first_script = base / "first.lua"
    first_script.write_text(FIRST_RANGE_SCRIPT)

    def measure(url: str, script: Path = script) -> str:
        result = wrk(url, args.clients, args.seconds, script)
        if not result.endswith("non-2xx 0"):
            raise SystemExit(f"{url} answered errors: {result}")
        return result

    print(f"cores: {os.cpu_count()}, a {len(song) // 1024} KiB MP3, 64 KiB ranges, {args.clients} connections, "
          f"{args.seconds}s each")  # fmt: skip
    with bench_stack(worker=False, object_store=str(objects), count_once_seconds=0) as plain:  # (every play counts)
        asyncio.run(publish(plain["database_url"]))
        print(f"  API alone          {measure(plain['url'] + path)}")
    with bench_stack(worker=False, object_store=str(objects), media_accel_prefix="/_media/",
                     count_once_seconds=0) as accel:
        asyncio.run(publish(accel["database_url"]))
        port, front_port, production_port = free_port(), free_port(), free_port()
        (base / "cache").mkdir(mode=0o777)
        (base / "cache").chmod(0o777)
        production = string.Template((ROOT / "api" / "nginx" / "smol.conf.template").read_text()).safe_substitute(
            SMOL_API=accel["url"], SMOL_OBJECTS=objects, SMOL_NGINX_LISTEN=f"127.0.0.1:{production_port}",
            SMOL_NGINX_CACHE=base / "cache",
        )  # fmt: skip
        conf = NGINX_CONF.format(base=base, port=port, front_port=front_port, objects=objects, api=accel["url"],
                                 production=production)  # fmt: skip
        (base / "nginx.conf").write_text(conf)
        server = subprocess.Popen([nginx, "-c", str(base / "nginx.conf"), "-g", "daemon off;"])
        try:
            wait_for_port("127.0.0.1", front_port, proc=server)
            print(f"  nginx alone        {measure(f'http://127.0.0.1:{port}{path}')}")
            print(f"  nginx → API accel  {measure(f'http://127.0.0.1:{front_port}{path}')}")
            production_url = f"http://127.0.0.1:{production_port}{path}"
            print(f"  production, later ranges  {measure(production_url)}")
            print(f"  production, first range   {measure(production_url, first_script)}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
