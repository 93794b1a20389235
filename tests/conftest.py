"""The real stack for the tests: a Temporal dev server, an embedded Postgres, the API and a worker over HTTP."""

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from commands.stack import ROOT, dev_server_flags, stop_postgres, temporal_binary, wait_for_port
from smol.db import create_pool, migrate
from smol.settings import Settings
from smol.temporal import connect
from smol.tokens import issue_token
from tests.support import (
    ADDRESS,
    CODEC_KEYS,
    CODEC_TOKEN,
    JWT_SECRET,
    WEBHOOK_SECRET,
    _stop,
    free_port,
    start_api,
    wait_for,
)

pytest_plugins = ["tests.shared_fixtures"]


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
        overrides.setdefault("catalog_schedule", "false")  # only the session's own worker keeps the daily schedule
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=self._env(overrides), cwd=ROOT,
                                stdout=log, stderr=log)  # fmt: skip

    def start_api(self, **overrides) -> tuple[subprocess.Popen, str]:
        """Another API process on a free port (same database and store unless overridden); returns it and its URL."""
        return start_api(self._env(overrides))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    import pgserver

    base = tmp_path_factory.mktemp("stack")
    temporal_port = free_port()
    temporal_log = open(base / "temporal.log", "wb")  # kept for diagnosing a failed start
    temporal = subprocess.Popen(
        [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(temporal_port),
         "--ui-port", str(free_port()), "--headless", "--log-level", "error", *dev_server_flags()],
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
            "SMOL_PUBLIC_LIST_CACHE_SECONDS": "0",  # tests change smols behind the API's back (test_public_cache)
            "SMOL_WEBHOOKS_ALLOW_PRIVATE": "true",
            "SMOL_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SMOL_CODEC_KEYS": json.dumps(CODEC_KEYS),
            "SMOL_CODEC_KEY_ID": "new",
            "SMOL_CODEC_TOKEN": CODEC_TOKEN,
            # minting configured (so its routes check requests); no mint reaches this stack's RPC
            "SMOL_CONTRACT_ID": "CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSC4",
            "SMOL_STELLAR_SECRET": "SDDQJNGWFZRB6PKKONKH55CFJNOW6BK2UDONBLF45CHPT6L5OZPAHKPR",
            "SMOL_STELLAR_RPC_URL": "http://127.0.0.1:9",  # (unreachable: no network here)
            "SMOL_WALLET_CHECK": "off",  # (sign-ins do not look wallets up; tests/test_auth.py's chain_api does)
            "SMOL_SESSION_CHECK_SECONDS": "0",  # (a session's binding looked up on every request)
            "SMOL_COUNT_ONCE_SECONDS": "0",  # (tests count each play and view; test_media.py checks the window)
            "SMOL_REGISTRATIONS_PER_HOUR": "100000",  # (every test registers from 127.0.0.1; test_auth.py checks it)
            "SMOL_MIXTAPES_PER_HOUR": "100000",  # (test_routes.py checks it)
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
        processes.append(stack.start_worker(worker_metrics_address=stack.worker_metrics, catalog_schedule="true"))
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


@pytest_asyncio.fixture(scope="session")
async def finished_smol(stack, http) -> dict:
    response = await http.post(
        "/", json={"prompt": "a house party of frogs", "playlist": "frogs"}, headers=stack.auth(ADDRESS)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return await wait_for(http, response.text, stack.auth(ADDRESS))
