"""No default secrets in production: the API and the worker refuse the built-in development JWT secret, webhook
secret and codec key unless they are on loopback (the API bound to it; the worker's Temporal and database on this
machine), and say what to set. `make run` (all loopback, no configuration) is covered in test_codec.py."""

import os
import subprocess
import sys

import httpx
import pytest

from commands.stack import ROOT
from smol.settings import API_SECRETS, WORKER_SECRETS, Settings, command_line_host, is_loopback
from tests.support import CODEC_KEYS, _stop, free_port

CONFIGURED = {"jwt_secret": "j" * 40, "webhook_secret": "w" * 40, "codec_keys": CODEC_KEYS, "codec_key_id": "new"}


def refusal(settings: Settings, *hosts: str, uses=API_SECRETS) -> str | None:
    try:
        settings.refuse_dev_secrets(*hosts, uses=uses)
    except SystemExit as exc:
        return str(exc)
    return None


def test_loopback_hosts():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "localhost", "LOCALHOST", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "", "10.0.0.5", "api.example.com", "localhost.example.com"]))


def test_built_in_secrets_are_refused_off_loopback_and_the_message_says_what_to_set():
    message = refusal(Settings(), "127.0.0.1", "0.0.0.0")
    for name in ("SMOL_JWT_SECRET", "SMOL_WEBHOOK_SECRET", "SMOL_CODEC_KEYS", "SMOL_CODEC_KEY_ID", "0.0.0.0"):
        assert name in message
    assert refusal(Settings(), "127.0.0.1", "localhost", "::1") is None  # make run
    assert refusal(Settings(**CONFIGURED), "0.0.0.0") is None
    only_jwt = refusal(Settings(**{**CONFIGURED, "jwt_secret": Settings().jwt_secret}), "10.1.2.3")
    assert "SMOL_JWT_SECRET" in only_jwt and "SMOL_WEBHOOK_SECRET" not in only_jwt
    # the dev key may stay in the keyring to read old runs; it may not encrypt new ones
    rotated = {**CODEC_KEYS, "dev": Settings().codec_keys["dev"].get_secret_value()}
    assert refusal(Settings(**{**CONFIGURED, "codec_keys": rotated}), "0.0.0.0") is None
    assert "SMOL_CODEC_KEYS" in refusal(Settings(**{**CONFIGURED, "codec_keys": rotated, "codec_key_id": "dev"}), "::")


def test_the_worker_needs_only_its_own_secrets_and_is_local_when_temporal_and_the_database_are():
    worker = Settings(webhook_secret="w" * 40, codec_keys=CODEC_KEYS, codec_key_id="new", temporal_address="t:7233")
    assert refusal(worker, worker.temporal_host(), worker.database_host(), uses=WORKER_SECRETS) is None
    assert Settings().database_host() == "localhost"  # the embedded Postgres
    assert Settings(database_url="postgresql://postgres:@/postgres?host=/tmp/pg").database_host() == "localhost"
    assert Settings(database_url="postgresql://u:p@db.internal:5432/smol").database_host() == "db.internal"
    assert Settings(temporal_address="[::1]:7233").temporal_host() == "[::1]"


def test_the_host_uvicorn_was_started_with():
    assert command_line_host(["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]) == "0.0.0.0"
    assert command_line_host(["uvicorn", "api.app:app", "--host=::"]) == "::"
    assert command_line_host(["uvicorn", "api.app:app", "--port", "8000"]) is None


def clean_env(**smol) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_")}
    return {**env, **{f"SMOL_{k.upper()}": v for k, v in smol.items()}}


def run(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


API = [sys.executable, "-m", "uvicorn", "api.app:app", "--port"]


@pytest.mark.parametrize(
    "host_setting, bind",
    [("0.0.0.0", "127.0.0.1"), ("127.0.0.1", "0.0.0.0")],
    ids=["SMOL_API_HOST", "uvicorn --host"],
)
def test_the_api_refuses_to_start_off_loopback_with_built_in_secrets(tmp_path, host_setting, bind):
    result = run(API + [str(free_port()), "--host", bind], clean_env(api_host=host_setting, data_dir=str(tmp_path)))
    assert result.returncode != 0
    for name in ("SMOL_JWT_SECRET", "SMOL_WEBHOOK_SECRET", "SMOL_CODEC_KEYS"):
        assert name in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


async def test_the_api_starts_off_loopback_once_the_secrets_are_set(stack):
    api, url = stack.start_api(api_host="0.0.0.0")  # the stack's env sets every secret
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        _stop(api)


@pytest.mark.parametrize(
    "where",
    [{"temporal_address": "temporal.internal:7233"}, {"database_url": "postgresql://smol:smol@db.internal/smol"}],
    ids=["remote Temporal", "remote database"],
)
def test_the_worker_refuses_to_start_off_loopback_with_built_in_secrets(tmp_path, where):
    result = run([sys.executable, "worker.py"], clean_env(data_dir=str(tmp_path), jwt_secret="j" * 40, **where))
    assert result.returncode != 0
    assert "SMOL_WEBHOOK_SECRET" in result.stderr and "SMOL_CODEC_KEYS" in result.stderr, result.stderr[-2000:]
    assert "SMOL_JWT_SECRET" not in result.stderr  # the worker does not use it
    assert "Traceback" not in result.stderr


async def test_with_dev_secrets_only_connections_that_arrive_on_loopback_are_answered(tmp_path):
    """Whatever the launcher bound to (gunicorn, `fastapi run`, 0.0.0.0), a request that reached the API on another
    address is refused while the built-in secrets are in use; with the secrets set, it is served."""
    from api.app import create_app

    dev = Settings(data_dir=tmp_path, api_host="127.0.0.1")
    outside = httpx.ASGITransport(app=create_app(dev))  # no lifespan: the guard answers before any route
    async with httpx.AsyncClient(transport=outside, base_url="http://10.1.2.3:8000") as client:
        refused = await client.get("/openapi.json")
    assert refused.status_code == 503 and "SMOL_JWT_SECRET" in refused.text
    async with httpx.AsyncClient(transport=outside, base_url="http://127.0.0.1:8000") as client:
        assert (await client.get("/openapi.json")).status_code == 200
    configured = httpx.ASGITransport(app=create_app(Settings(data_dir=tmp_path, **CONFIGURED)))
    async with httpx.AsyncClient(transport=configured, base_url="http://10.1.2.3:8000") as client:
        assert (await client.get("/openapi.json")).status_code == 200
