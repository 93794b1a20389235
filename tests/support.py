"""Helpers shared by the test modules (plain functions, constants, classes); the shared fixtures are in
shared_fixtures.py. A test module imports from here, never from another test module or from conftest."""

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import httpx
from stellar_sdk import Keypair, StrKey

from activities.providers.interfaces import SongJob
from commands.mint_client import build_mint
from commands.stack import ROOT, wait_for_port

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


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split("{")[0].split(" ")[0]
            if head == name:
                total += float(line.rsplit(" ", 1)[1])
    return total


def unsigned_jwt(claims: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def job(prompt="a pop song", submission=0, smol_id="s" * 64) -> SongJob:
    return SongJob(smol_id=smol_id, submission=submission, title="T", lyrics="la", style=["pop", "dreamy"],
                   instrumental=False, prompt=prompt, description="A bright picture.", artist="G", image_key="x.png",
                   seed=1)  # fmt: skip


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that answers with the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int], tls: ssl.SSLContext | None = None):
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return self.requests

    def close(self):
        self.server.shutdown()


# S3 (moto's server; see the s3_endpoint fixture)
CREDENTIALS = {"access_key_id": "test", "secret_access_key": "test"}


def make_bucket(endpoint: str) -> str:
    bucket = f"smol-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=bucket)  # fmt: skip
    return bucket


# Minting against the fake Stellar RPC (see the mint fixtures)
PASSPHRASE = "Test SDF Network ; September 2015"
SERVER = Keypair.random()
CONTRACT = StrKey.encode_contract(os.urandom(32))


async def client_xdr(rpc_client, user: Keypair, smol_ids: list[str], batch: bool = False, **changes) -> str:
    options = {"contract_id": CONTRACT, "issuer": SERVER.public_key, "passphrase": PASSPHRASE, "batch": batch}
    return await build_mint(rpc_client, user.secret, smol_ids, **{**options, **changes})


# Smols of two users, written straight to the database
OWNER_KEY, OTHER_KEY = Keypair.random(), Keypair.random()
OWNER, OTHER = OWNER_KEY.public_key, OTHER_KEY.public_key


async def insert_smol(pool, address: str = OWNER, kind: str = "public", created_at: datetime | None = None,
                      media: bool = False, playlist: str | None = None) -> dict:  # fmt: skip
    """A finished smol of `kind` (public, private, unsafe), written the way the pipeline writes one."""
    smol_id = secrets.token_hex(32)
    song_1, song_2 = secrets.token_hex(8), secrets.token_hex(8)
    await pool.execute(
        "INSERT INTO smols (id, title, song_1, song_2, address, public, created_at) "
        "VALUES ($1, 'matrix', $2, $3, $4, $5, coalesce($6, now() AT TIME ZONE 'utc'))",
        smol_id, song_1, song_2, address, kind != "private", created_at,
    )  # fmt: skip
    payload = {"address": address, "prompt": f"matrix {kind}", "public": kind != "private", "instrumental": False,
               "playlist": playlist}  # fmt: skip
    nsfw = {"safe": kind != "unsafe", "categories": ["violence"] if kind == "unsafe" else []}
    lyrics = {"title": "matrix", "lyrics": "la la", "style": ["matrixpop", kind]}
    await pool.execute(
        "INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, 'payload', $2::jsonb), ($1, 'nsfw', $3::jsonb), "
        "($1, 'lyrics', $4::jsonb)",
        smol_id, payload, {"value": nsfw}, {"value": lyrics},
    )  # fmt: skip
    if playlist:
        await pool.execute("INSERT INTO playlists (title, id) VALUES ($1, $2)", playlist, smol_id)
    if media:
        for variant, music_id in enumerate((song_1, song_2)):
            await pool.execute(
                "INSERT INTO smol_songs (music_id, smol_id, variant, provider, status, object_key) "
                "VALUES ($1, $2, $3, 'local', 4, $4)",
                music_id, smol_id, variant, f"{music_id}.mp3",
            )  # fmt: skip
    return {"id": smol_id, "song_1": song_1, "song_2": song_2, "kind": kind}


async def plays_of(pool, smol_id: str) -> int:
    return await pool.fetchval("SELECT plays FROM smols WHERE id = $1", smol_id)
