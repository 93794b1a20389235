"""Fixtures used by more than one test module (loaded by conftest.py as a plugin)."""

import uuid

import httpx
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer

from smol.stellar_rpc import StellarRpc
from tests.fake_stellar import FakeStellarRpc
from tests.fakes import FakeElevenLabs, FakePixellab, FakeReplicate
from tests.support import CONTRACT, PASSPHRASE, SERVER, _stop, free_port


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def rpc():
    fake = FakeStellarRpc(PASSPHRASE, CONTRACT, SERVER.public_key)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def mint_queue():
    return f"mint-tests-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def mint_settings(stack, rpc, mint_queue):
    return {"stellar_rpc_url": rpc.url, "stellar_secret": SERVER.secret, "contract_id": CONTRACT,
            "stellar_network_passphrase": PASSPHRASE, "task_queue": mint_queue, "mint_tx_ledgers": 6}  # fmt: skip


@pytest.fixture(scope="module")
def mint_api(stack, mint_settings):
    api, url = stack.start_api(**mint_settings)
    yield url
    _stop(api)


@pytest_asyncio.fixture
async def api(mint_api):
    async with httpx.AsyncClient(base_url=mint_api, timeout=20) as client:
        yield client


@pytest_asyncio.fixture
async def rpc_client(rpc):
    async with httpx.AsyncClient(timeout=1.0) as http:
        yield StellarRpc(http, rpc.url)


@pytest.fixture
def pixellab():
    fake = FakePixellab()
    yield fake
    fake.close()


@pytest.fixture
def replicate(audio):
    fake = FakeReplicate(audio, ready_after=0.3)
    yield fake
    fake.close()


@pytest.fixture
def elevenlabs(audio):
    fake = FakeElevenLabs(audio)
    yield fake
    fake.close()
