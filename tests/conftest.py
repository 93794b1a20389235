"""The real stack for the tests: a Temporal dev server, an embedded Postgres, the API and a worker over HTTP."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from commands.stack import ROOT, search_attribute_flags, stop_postgres, temporal_binary, wait_for_port
from smol.db import create_pool, migrate
from smol.settings import Settings
from smol.temporal import connect
from smol.tokens import issue_token

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
ADDRESS = "GE2ECREATOR"
WEBHOOK_SECRET = "test-webhook-secret"
# Two codec keys, as after a rotation: "old" still opens, "new" encrypts.
CODEC_KEYS = {
    "old": "b2xkLWtleS1vZi10aGUtc21vbC10ZXN0LXN0YWNrISE=",  # base64 of b"old-key-of-the-smol-test-stack!!"
    "new": "bmV3LWtleS1vZi10aGUtc21vbC10ZXN0LXN0YWNrISE=",
}
CODEC_TOKEN = "test-codec-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    settings: Settings
    env: dict
    api_url: str
    worker_metrics: str = ""

    def token(self, address: str) -> str:
        return issue_token(self.settings, address)

    def auth(self, address: str) -> dict:
        return {"Authorization": f"Bearer {self.token(address)}"}

    def _env(self, overrides: dict) -> dict:
        return {**self.env, **{f"SMOL_{k.upper()}": str(v) for k, v in overrides.items()}}

    def start_worker(self, log=subprocess.DEVNULL, **overrides) -> subprocess.Popen:
        overrides.setdefault("worker_metrics_address", f"127.0.0.1:{free_port()}")
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=self._env(overrides), cwd=ROOT,
                                stdout=log, stderr=log)  # fmt: skip

    def start_api(self, **overrides) -> tuple[subprocess.Popen, str]:
        """Another API process on a free port (same database and store unless overridden); returns it and its URL."""
        return start_api(self._env(overrides))


def start_api(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port)]
    api = subprocess.Popen(command + ["--log-level", "warning"], env=env, cwd=ROOT)
    wait_for_port("127.0.0.1", port, proc=api)
    return api, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    import pgserver

    base = tmp_path_factory.mktemp("stack")
    temporal_port = free_port()
    temporal_log = open(base / "temporal.log", "wb")  # kept for diagnosing a failed start
    temporal = subprocess.Popen(
        [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(temporal_port),
         "--ui-port", str(free_port()), "--headless", "--log-level", "error", *search_attribute_flags()],
        stdout=temporal_log, stderr=temporal_log,
    )  # fmt: skip
    processes = [temporal]
    pgdata = base / "pg"
    pgdata.mkdir()
    try:
        wait_for_port("127.0.0.1", temporal_port, proc=temporal)
        database_url = pgserver.get_server(pgdata, cleanup_mode=None).get_uri()
        env = {
            **os.environ,
            "SMOL_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "SMOL_TASK_QUEUE": "smol-tests",
            "SMOL_DATA_DIR": str(base / "data"),
            "SMOL_DATABASE_URL": database_url,
            "SMOL_OBJECT_STORE": str(base / "objects"),
            "SMOL_JWT_SECRET": JWT_SECRET,
            "SMOL_LOCAL_SONG_DELAY": "1",
            "SMOL_SONG_POLL_INTERVAL": "0.5",
            "SMOL_CREATES_PER_MINUTE": "1000",
            "SMOL_WEBHOOKS_ALLOW_PRIVATE": "true",
            "SMOL_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SMOL_CODEC_KEYS": json.dumps(CODEC_KEYS),
            "SMOL_CODEC_KEY_ID": "new",
            "SMOL_CODEC_TOKEN": CODEC_TOKEN,
            # minting configured (so its routes check requests); no mint reaches this stack's RPC
            "SMOL_CONTRACT_ID": "CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSC4",
            "SMOL_STELLAR_SECRET": "SDDQJNGWFZRB6PKKONKH55CFJNOW6BK2UDONBLF45CHPT6L5OZPAHKPR",
        }
        settings = Settings(
            temporal_address=env["SMOL_TEMPORAL_ADDRESS"], task_queue="smol-tests", data_dir=base / "data",
            database_url=database_url, object_store=env["SMOL_OBJECT_STORE"], jwt_secret=JWT_SECRET,
            local_song_delay=1, song_poll_interval=0.5, codec_keys=CODEC_KEYS, codec_key_id="new",
            codec_token=CODEC_TOKEN,
        )  # fmt: skip
        api, api_url = start_api(env)
        processes.append(api)
        stack = Stack(settings=settings, env=env, api_url=api_url)
        stack.worker_metrics = f"127.0.0.1:{free_port()}"
        processes.append(stack.start_worker(worker_metrics_address=stack.worker_metrics))
        yield stack
    finally:
        for proc in reversed(processes):
            _stop(proc)
        stop_postgres(pgdata)
        temporal_log.close()


@pytest_asyncio.fixture(scope="session")
async def pool(stack) -> asyncpg.Pool:
    pool = await create_pool(stack.settings, max_size=4)
    await migrate(pool)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def temporal(stack) -> Client:
    return await connect(stack.settings)


@pytest_asyncio.fixture(scope="session")
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def _forget_cookies_after_each_test(request):
    """A login sets the session cookie on the shared client: later tests' anonymous requests must stay anonymous."""
    yield
    if "http" in request.fixturenames:
        request.getfixturevalue("http").cookies.clear()


@pytest.fixture(scope="session")
def audio() -> bytes:
    """A real 2 s MP3 for the fake song services to serve."""
    from activities.providers.local.music import encode_mp3, plan, render

    arrangement = plan(["pop"], 1)
    return encode_mp3(render(arrangement, 2, 0, 1), title="t", artist="a", arrangement=arrangement, cover_png=None)


@pytest_asyncio.fixture
async def provider_client():
    """The HTTP client provider adapters get, with a short timeout so a hanging fake fails fast."""
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def is_paused(body: dict) -> bool:
    return body.get("wf", {}).get("status") == "paused"


def is_polling(body: dict) -> bool:
    """Waiting for its songs (only its owner sees the current step)."""
    return body.get("wf", {}).get("current_step") == "poll"


async def wait_for(http: httpx.AsyncClient, smol_id: str, headers: dict | None = None, timeout: float = 90,
                   until=lambda body: "d1" in body) -> dict:  # fmt: skip
    """Poll GET /{id} until `until(body)` holds (default: finished) or the smol fails."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/{smol_id}", headers=headers or {})
        if response.status_code == 200:
            body = response.json()
            if until(body):
                return body
            if (body.get("wf") or {}).get("status") in ("errored", "terminated"):
                raise AssertionError(f"smol {smol_id} ended: {body['wf']}")
        await asyncio.sleep(0.25)
    raise AssertionError(f"smol {smol_id} did not get there in {timeout}s; last: {body.get('wf')}")


@pytest_asyncio.fixture(scope="session")
async def finished_smol(stack, http) -> dict:
    response = await http.post(
        "/", json={"prompt": "a house party of frogs", "playlist": "frogs"}, headers=stack.auth(ADDRESS)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return await wait_for(http, response.text, stack.auth(ADDRESS))
