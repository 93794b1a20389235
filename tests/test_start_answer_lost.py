"""A start the Temporal server carried out but whose answer came too late: the API asks once whether the run is there
before telling the client nothing was started (a client retrying with its Idempotency-Key would get a second smol)."""

import asyncio
import secrets

import httpx
import pytest

from smol.temporal import RPC_TIMEOUT
from tests.support import _stop


class HoldingProxy:
    """TCP between the API and Temporal; while `holding`, the server's bytes wait (in order) before going on."""

    def __init__(self, target_port: int):
        self.target_port, self.holding = target_port, False

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _connect(self, client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            await asyncio.gather(self._pump(client_reader, server_writer, hold=False),
                                 self._pump(server_reader, client_writer, hold=True), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # (the test is over)

    async def _pump(self, reader, writer, hold: bool):
        try:
            while data := await reader.read(65536):
                while hold and self.holding:
                    await asyncio.sleep(0.05)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def close(self):
        self.server.close()


@pytest.mark.slow
async def test_a_start_whose_answer_was_lost_is_one_smol_not_two(stack, temporal):
    proxy = HoldingProxy(int(stack.settings.temporal_address.rsplit(":", 1)[1]))
    port = await proxy.start()
    api, url = stack.start_api(temporal_address=f"127.0.0.1:{port}")
    address = f"GLOST{secrets.token_hex(4).upper()}"
    headers = {**stack.auth(address), "Idempotency-Key": secrets.token_hex(8)}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            warm = await http.post("/", json={"prompt": "a warm-up frog"}, headers=stack.auth(address))
            assert warm.status_code == 200, warm.text  # (connected)
            proxy.holding = True
            creating = asyncio.create_task(http.post("/", json={"prompt": "a frog"}, headers=headers))
            await asyncio.sleep(RPC_TIMEOUT.total_seconds() + 1.5)  # the start timed out; the API asks after it
            proxy.holding = False
            created = await creating
            assert created.status_code == 200, created.text
            again = await http.post("/", json={"prompt": "a frog"}, headers=headers)  # the client's retry
            assert again.status_code == 200 and again.text == created.text
        await temporal.get_workflow_handle(created.text).describe()  # (there: made by the session's worker)
    finally:
        proxy.holding = False
        _stop(api)
        proxy.close()


@pytest.mark.slow
async def test_a_start_temporal_never_answers_about_keeps_its_run_slot(stack, temporal, pool):
    """Neither the start nor the question whether it started is answered: the client is told it may have started,
    and the run slot stays counted (a given-back slot would be a free run whenever Temporal is slow)."""
    proxy = HoldingProxy(int(stack.settings.temporal_address.rsplit(":", 1)[1]))
    port = await proxy.start()
    api, url = stack.start_api(temporal_address=f"127.0.0.1:{port}")
    address = f"GUNSURE{secrets.token_hex(4).upper()}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            warm = await http.post("/", json={"prompt": "a warm-up frog"}, headers=stack.auth(address))
            assert warm.status_code == 200, warm.text  # (connected)
            proxy.holding = True
            unsure = await http.post("/", json={"prompt": "a frog"}, headers=stack.auth(address))
            proxy.holding = False
            assert unsure.status_code == 503 and "may have started" in unsure.text, unsure.text
        counted = await pool.fetchval("SELECT count(*) FROM create_requests WHERE address = $1", address)
        assert counted == 2
    finally:
        proxy.holding = False
        _stop(api)
        proxy.close()
