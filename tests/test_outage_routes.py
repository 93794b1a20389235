"""Postgres or the object store down: every route answers 503 with Retry-After, never 500, and an API started while
Postgres is down comes up and serves once it is back. On a stack of its own (its Postgres, its API processes, a
store directory and an S3 bucket on moto's server) next to the session's Temporal, on a queue no worker serves."""

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import httpx
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer
from webauthn.helpers import bytes_to_base64url

from commands.stack import stop_postgres
from smol import repo
from smol.db import CONNECT_SECONDS, RELEASE_SECONDS, REQUEST_STATEMENT_MS, create_pool, migrate
from smol.ids import new_smol_id
from smol.settings import Settings
from smol.store import FileStore, S3Store
from tests.support import _stop, free_port, start_api

pytestmark = pytest.mark.slow
OWNER = "GOUTAGEOWNER"
MIXTAPE = "0123456789abcdef"
NO_DATABASE = {("POST", "/logout"), ("POST", "/codec/decode"), ("POST", "/codec/encode")}
# Media may be answered from the store alone; minting checks the transaction before it looks anything up; the
# SoundFlow catalog lives in the object store (and its premium requests are Temporal's).
STORE_FIRST = ("/song/", "/image/", "/mint", "/catalog/", "/tracks/")
BODIES = {
    ("POST", "/"): {"prompt": "a song about outages"},
    ("POST", "/mixtapes"): {"title": "t", "desc": "", "smols": ["ab" * 32]},
    ("POST", "/keys"): {"name": "ci"},
    ("PUT", "/mixtapes/{id}"): {"title": "t", "desc": "", "smols": ["ab" * 32]},
    ("POST", "/login"): {"type": "connect", "keyId": "k", "contractId": "C", "response": {"id": "k", "response": {
        "clientDataJSON": bytes_to_base64url(json.dumps({"type": "webauthn.get", "challenge": "c" * 20}).encode())}}},
}  # fmt: skip


class Outage:
    def __init__(self, base, stack):
        import pgserver

        self.base, self.pgdata = base, base / "pg"
        self.pgdata.mkdir()
        self.objects = base / "objects"
        self.database_url = pgserver.get_server(self.pgdata, cleanup_mode=None).get_uri()
        self.env = {**stack.env, "SMOL_DATABASE_URL": self.database_url, "SMOL_OBJECT_STORE": str(self.objects),
                    "SMOL_DATA_DIR": str(base / "data"), "SMOL_TASK_QUEUE": f"outage-{uuid.uuid4().hex[:8]}",
                    "AWS_MAX_ATTEMPTS": "2"}  # fmt: skip
        self.settings = Settings(database_url=self.database_url, object_store=str(self.objects))
        self.smol_id, self.songs = new_smol_id(), [uuid.uuid4().hex, uuid.uuid4().hex]
        self.apis: list = []
        self.url = ""

    def start_api(self, **env) -> str:
        api, url = start_api({**self.env, **env})
        self.apis.append(api)
        return url

    def stop_postgres(self) -> None:
        stop_postgres(self.pgdata)

    def start_postgres(self) -> None:
        import pgserver

        pgserver.get_server(self.pgdata, cleanup_mode=None).ensure_postgres_running()

    async def seed(self, store) -> None:
        """One finished public smol with its cover and songs."""
        pool = await create_pool(self.settings, max_size=2)
        try:
            await migrate(pool)
            await store.put(f"{self.smol_id}.png", b"png")
            for variant, music_id in enumerate(self.songs):
                await store.put(f"{music_id}.mp3", b"mp3 bytes")
                await repo.save_song(pool, self.smol_id, music_id, variant, "local", 4, f"{music_id}.mp3")
            async with pool.acquire() as conn:
                await repo.insert_smol(conn, smol_id=self.smol_id, title="t", song_1=self.songs[0],
                                       song_2=self.songs[1], public=True, instrumental=False, address=OWNER,
                                       playlist="mix")  # fmt: skip
        finally:
            await pool.close()


@pytest_asyncio.fixture(scope="module")
async def outage(stack, tmp_path_factory):
    made = Outage(tmp_path_factory.mktemp("outage"), stack)
    try:
        await made.seed(FileStore(made.objects))
        made.url = made.start_api()
        yield made
    finally:
        for api in made.apis:
            _stop(api)
        made.stop_postgres()


def _request(operation: tuple[str, str], smol_id: str, music_id: str) -> tuple[str, str, dict | None]:
    method, template = operation
    values = {"id": MIXTAPE if template.startswith("/mixtapes/") else smol_id, "smol_id": smol_id,
              "music_id": music_id, "song_id": music_id, "title": "mix", "key_id": "key_" + "0" * 16, "tag": "pop",
              "slug": "study", "date": "2026-11-23", "name": "x.mp3", "action": "pause"}  # fmt: skip
    path = template.format(**values) + ("?q=frog" if template == "/search" else "")
    return method, path, BODIES.get(operation, {})


async def _until(check, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if await check():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not back in time"
        await asyncio.sleep(0.5)


async def test_every_route_answers_503_with_retry_after_while_postgres_is_down(stack, outage):
    headers = {**stack.auth(OWNER), "Origin": "http://localhost:8000"}
    async with httpx.AsyncClient(base_url=outage.url, timeout=30, headers=headers) as http:
        assert outage.smol_id in (await http.get("/")).text
        operations = [(m.upper(), p) for p, ops in (await http.get("/openapi.json")).json()["paths"].items()
                      for m in ops]  # fmt: skip
        outage.stop_postgres()
        try:
            wrong = []
            for operation in operations:
                if operation in NO_DATABASE:
                    continue
                method, path, body = _request(operation, outage.smol_id, outage.songs[0])
                answer = await http.request(method, path, json=body if method in ("POST", "PUT") else None)
                down = answer.status_code == 503 and answer.headers.get("retry-after")
                if not down and not (operation[1].startswith(STORE_FIRST) and answer.status_code < 500):
                    wrong.append((method, path, answer.status_code, answer.text[:100]))
            assert wrong == [], wrong
            assert (await http.get("/healthz")).status_code == 503
        finally:
            outage.start_postgres()
        await _until(lambda: _ok(http, "/"))
        assert outage.smol_id in (await http.get(f"/{outage.smol_id}")).text


def _postgres_processes(pgdata) -> list[int]:
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


async def test_a_postgres_that_stops_answering_gets_503_not_a_wait_without_end(stack, outage):
    """A server that takes connections but answers nothing (stopped, partitioned away): reads and the health check
    answer 503 within the pool's limits (a new connection's 5 s; the health check's 2 s), and all is well once it
    answers."""
    async with httpx.AsyncClient(base_url=outage.url, timeout=60, headers=stack.auth(OWNER)) as http:
        assert (await http.get("/created")).status_code == 200  # (the pool holds live connections)
        frozen = _postgres_processes(outage.pgdata)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            alone = await http.get("/created")  # (on the pool's live connection: its query times out)
            took_alone = time.monotonic() - started
            started = time.monotonic()
            health = await http.get("/healthz")  # (a load balancer asks it with a short timeout of its own)
            took_health = time.monotonic() - started
            started = time.monotonic()
            answers = [alone, health, *await asyncio.gather(*(http.get(path) for path in (
                "/created?limit=3", f"/{outage.smol_id}", "/likes")))]  # fmt: skip
            took = time.monotonic() - started
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        assert [answer.status_code for answer in answers] == [503] * 5, [a.text for a in answers]
        assert all(answer.headers.get("retry-after") for answer in answers)
        # (the command timeout, then the connection handed back: it took twice the command timeout before)
        assert took_alone < REQUEST_STATEMENT_MS / 1000 + 1 + RELEASE_SECONDS + 3, took_alone
        assert took_health < 4, took_health  # (its 2 s; it waited for a new connection's 5 s before)
        assert took < CONNECT_SECONDS * 2, took  # (each waits for a new connection, given up on after 5 s)
        await _until(lambda: _ok(http, "/created"))
        assert (await http.get("/healthz")).status_code == 200


async def _ok(http: httpx.AsyncClient, path: str) -> bool:
    return (await http.get(path)).status_code == 200


async def test_an_api_started_while_postgres_is_down_serves_when_it_is_back(outage):
    outage.stop_postgres()
    try:
        url = outage.start_api()  # returns once it listens: it did not exit for want of a database
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            listed = await http.get("/")
            assert listed.status_code == 503 and listed.headers["retry-after"], listed.text
            assert (await http.get("/healthz")).status_code == 503
            outage.start_postgres()
            await _until(lambda: _ok(http, "/"))
            assert outage.smol_id in (await http.get("/")).text
    finally:
        outage.start_postgres()


async def test_a_failing_disk_under_the_local_store_is_503(outage):
    song = f"/song/{outage.songs[0]}.mp3"
    aside = outage.objects.with_name("objects-aside")
    async with httpx.AsyncClient(base_url=outage.url, timeout=30) as http:
        assert (await http.get(song)).status_code == 200
        outage.objects.rename(aside)
        outage.objects.write_bytes(b"")  # every path under it now fails with NotADirectoryError, not "not found"
        try:
            answer = await http.get(song)
            assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
        finally:
            outage.objects.unlink()
            aside.rename(outage.objects)
        assert (await http.get(song)).status_code == 200


class _Failing(BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request with a 500 InternalError."""

    def _fail(self):
        body = b"<Error><Code>InternalError</Code><Message>down</Message></Error>"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_DELETE = _fail

    def log_message(self, *args):
        pass


async def test_s3_down_or_failing_is_503(outage):
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    endpoint, bucket = f"http://127.0.0.1:{port}", f"smol-{uuid.uuid4().hex[:8]}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(Bucket=bucket)
    store = S3Store(bucket, "media", endpoint_url=endpoint, access_key_id="test", secret_access_key="test")
    await store.put(f"{outage.smol_id}.png", b"png")
    await store.put(f"{outage.songs[0]}.mp3", b"mp3 bytes")
    await store.close()
    failing = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    s3 = {"object_store": f"s3://{bucket}/media", "s3_access_key_id": "test", "s3_secret_access_key": "test"}
    env = {f"SMOL_{k.upper()}": v for k, v in s3.items()}
    paths = [f"/song/{outage.songs[0]}.mp3", f"/image/{outage.smol_id}.png"]
    try:
        up = outage.start_api(SMOL_S3_ENDPOINT_URL=endpoint, **env)
        erring = outage.start_api(SMOL_S3_ENDPOINT_URL=f"http://127.0.0.1:{failing.server_port}", **env)
        async with httpx.AsyncClient(timeout=60) as http:
            for path in paths:
                assert (await http.get(up + path)).status_code == 200, path
            moto.stop()
            moto = None
            for base in (up, erring):
                for path in paths:
                    answer = await http.get(base + path)
                    assert answer.status_code == 503 and answer.headers["retry-after"], (base, path, answer.text)
    finally:
        failing.shutdown()
        if moto is not None:
            moto.stop()
