"""Media behind nginx: the API checks the request and counts the play, then hands the bytes to nginx with
X-Accel-Redirect; nginx (Debian's, started here) serves them from the same directory, ranges included."""

import asyncio
import shutil
import string
import subprocess
from pathlib import Path

import httpx
import pytest

from commands.stack import wait_for_port
from tests.support import ADDRESS, _stop, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = """
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {base}/body; proxy_temp_path {base}/proxy; fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /_media/ {{ internal; etag off; add_header ETag $upstream_http_etag; alias {objects}/; }}
        location / {{ proxy_pass {api}; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def accel_api(stack):
    api, url = stack.start_api(media_accel_prefix="/_media/")
    yield url
    _stop(api)


async def test_the_api_hands_media_gets_to_nginx(accel_api, finished_smol):
    song, smol_id = finished_smol["d1"]["Song_1"], finished_smol["d1"]["Id"]
    async with httpx.AsyncClient(base_url=accel_api) as api:
        handed = await api.get(f"/song/{song}.mp3", headers={"Range": "bytes=10-19"})
        assert handed.status_code == 200 and handed.content == b""
        assert handed.headers["x-accel-redirect"] == f"/_media/{song}.mp3" and handed.headers["etag"] == f'"{song}"'
        cover = await api.get(f"/image/{smol_id}.png")
        assert cover.headers["x-accel-redirect"] == f"/_media/{smol_id}.png"
        assert "x-accel-redirect" not in (await api.get(f"/image/{smol_id}.png?scale=2")).headers  # made here
        assert (await api.head(f"/song/{song}.mp3")).headers["content-length"] != "0"  # HEAD answers itself
        assert (await api.get("/song/unknown-song.mp3")).status_code == 404


@pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx (.ci/run installs it)")
async def test_nginx_serves_the_ranges_the_api_allowed(stack, pool, accel_api, finished_smol, http, tmp_path):
    song, smol_id = finished_smol["d1"]["Song_1"], finished_smol["d1"]["Id"]
    whole = (await http.get(f"/song/{song}.mp3")).content
    port = free_port()
    tmp_path.chmod(0o755)
    objects = Path(stack.env["SMOL_OBJECT_STORE"])
    for parent in [objects, *objects.parents]:  # nginx's workers run as another user
        if parent != Path("/") and parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)
    (tmp_path / "nginx.conf").write_text(CONF.format(base=tmp_path, port=port, objects=objects, api=accel_api))
    server = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    try:
        wait_for_port("127.0.0.1", port, proc=server)
        plays = await pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as front:
            part = await front.get(f"/song/{song}.mp3", headers={"Range": "bytes=100-199"})
            assert part.status_code == 206 and part.content == whole[100:200]
            full = await front.get(f"/song/{song}.mp3")
            assert full.status_code == 200 and full.content == whole and full.headers["etag"] == f'"{song}"'
            assert (await front.get("/_media/" + f"{song}.mp3")).status_code == 404  # internal only
            assert (await front.get("/song/unknown-song.mp3")).status_code == 404
        assert await pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id) == plays + 1
    finally:
        server.terminate()
        server.wait()


PRODUCTION = Path(__file__).resolve().parent.parent / "api" / "nginx" / "smol.conf.template"


def production_conf(base: Path, port: int, objects: Path, api: str) -> str:
    """The README's nginx configuration (api/nginx/smol.conf.template), filled in as envsubst would."""
    (base / "cache").mkdir(mode=0o777)
    (base / "cache").chmod(0o777)  # (nginx's workers run as another user)
    server = string.Template(PRODUCTION.read_text()).safe_substitute(
        SMOL_API=api, SMOL_OBJECTS=objects, SMOL_NGINX_LISTEN=f"127.0.0.1:{port}", SMOL_NGINX_CACHE=base / "cache"
    )
    return (f"worker_processes 1; pid {base}/nginx.pid; error_log {base}/error.log; "
            f"events {{ worker_connections 256; }} http {{ access_log off; client_body_temp_path {base}/body; "
            f"proxy_temp_path {base}/proxy; fastcgi_temp_path {base}/fastcgi; uwsgi_temp_path {base}/uwsgi; "
            f"scgi_temp_path {base}/scgi; {server} }}")  # fmt: skip


def song_requests(metrics: str) -> float:
    """Requests the API answered on its song route, from its /metrics."""
    return sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith("smol_api_requests_total{") and 'route="/song/' in line)  # fmt: skip


def has_auth_request() -> bool:
    if not Path(NGINX).exists():
        return False
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    return "http_auth_request_module" in built


@pytest.mark.skipif(not has_auth_request(), reason="needs Debian's nginx with auth_request (.ci/run installs it)")
async def test_nginx_sends_the_rest_of_a_play_once_the_api_said_yes(stack, pool, accel_api, finished_smol, http,
                                                                     tmp_path):  # fmt: skip
    song, smol_id = finished_smol["d1"]["Song_1"], finished_smol["d1"]["Id"]
    whole = (await http.get(f"/song/{song}.mp3")).content
    port, objects = free_port(), Path(stack.env["SMOL_OBJECT_STORE"])
    tmp_path.chmod(0o755)
    (tmp_path / "nginx.conf").write_text(production_conf(tmp_path, port, objects, accel_api))
    server = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    plays = lambda: pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id)  # noqa: E731
    try:
        wait_for_port("127.0.0.1", port, proc=server)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as front:
            before, played = song_requests((await front.get("/metrics")).text), await plays()
            for start in range(1000, 6000, 1000):  # the rest of a play
                part = await front.get(f"/song/{song}.mp3", headers={"Range": f"bytes={start}-{start + 99}"})
                assert part.status_code == 206 and part.content == whole[start : start + 100]
                assert part.headers["cache-control"] == "public, max-age=31536000, immutable"
                assert part.headers["etag"] == f'"{song}"' and part.headers["content-type"] == "audio/mpeg"
            assert song_requests((await front.get("/metrics")).text) == before + 1  # asked once, then kept
            assert await plays() == played
            first = await front.get(f"/song/{song}.mp3", headers={"Range": "bytes=0-99"})  # a play starts
            assert first.status_code == 206 and first.content == whole[:100] and await plays() == played + 1
            download = await front.get(f"/song/{song}.mp3?download=1", headers={"Range": "bytes=100-199"})
            assert "attachment" in download.headers["content-disposition"] and download.content == whole[100:200]
            assert (await front.get("/song/unknown-song.mp3", headers={"Range": "bytes=10-19"})).status_code == 404

            await pool.execute("UPDATE smols SET public = false WHERE id = $1", smol_id)
            try:
                await asyncio.sleep(5.1)  # what nginx kept of the API's answer expires
                hidden = await front.get(f"/song/{song}.mp3", headers={"Range": "bytes=100-199"})
                assert hidden.status_code == 404 and hidden.content == b"not found"
                owner = stack.auth(ADDRESS)
                mine = await front.get(f"/song/{song}.mp3", headers={"Range": "bytes=100-199", **owner})
                assert mine.status_code == 206 and mine.content == whole[100:200]
                assert mine.headers["cache-control"] == "private, max-age=600"
            finally:
                await pool.execute("UPDATE smols SET public = true WHERE id = $1", smol_id)
    finally:
        server.terminate()
        server.wait()


async def test_the_access_check_answers_without_a_byte_or_a_play(http, finished_smol, stack, pool):
    song, smol_id = finished_smol["d1"]["Song_1"], finished_smol["d1"]["Id"]
    played = await pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id)
    check = {"X-Smol-Access-Check": "1"}
    allowed = await http.get(f"/song/{song}.mp3", headers=check)
    assert allowed.status_code == 204 and allowed.content == b"" and allowed.headers["etag"] == f'"{song}"'
    assert (await http.get("/song/unknown-song.mp3", headers=check)).status_code == 403
    assert await pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id) == played
