"""Webhooks: signed events on completion and failure, retried with backoff, never to private addresses by default."""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from smol.ids import new_smol_id
from smol.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign, verify
from tests.conftest import WEBHOOK_SECRET, _stop, wait_for
from tests.workers import RefusingSongs, activities_with, worker_for
from workflows.models import Payload, SmolInput
from workflows.smol import SmolWorkflow


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that answers with the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]):
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
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return self.requests

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver(request):
    made = Receiver(getattr(request, "param", []))
    yield made
    made.close()


@pytest.mark.parametrize("receiver", [[500, 503]], indirect=True)
async def test_completion_is_delivered_once_signed_after_two_failures(stack, http, receiver):
    created = await http.post("/", json={"prompt": "a hooked house track", "webhook_url": receiver.url},
                              headers=stack.auth("GHOOK"))  # fmt: skip
    smol_id = created.text
    body = await wait_for(http, smol_id, stack.auth("GHOOK"))
    assert "webhook_url" not in body["kv_do"]["payload"]  # the creator's endpoint is not shown to others
    requests = await receiver.wait_for(3)
    await asyncio.sleep(1.5)  # nothing more arrives after the success
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert len({r["headers"][EVENT_ID_HEADER] for r in requests}) == 1
    delivered = requests[-1]
    assert verify(WEBHOOK_SECRET, delivered["body"], delivered["headers"][SIGNATURE_HEADER])
    assert not verify("another-secret", delivered["body"], delivered["headers"][SIGNATURE_HEADER])
    event = json.loads(delivered["body"])
    assert event["type"] == "smol.completed" and event["smol_id"] == smol_id
    assert event["song_ids"] == [body["d1"]["Song_1"], body["d1"]["Song_2"]] and event["status"] == "complete"


async def test_failure_is_delivered_with_the_error(stack, pool, temporal, task_queue, receiver):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id = new_smol_id()
        payload = Payload(address="GHOOKFAIL", prompt="a doomed hook", webhook_url=receiver.url)
        handle = await temporal.start_workflow(SmolWorkflow.run, SmolInput(smol_id, payload), id=smol_id,
                                               task_queue=task_queue)  # fmt: skip
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    event = json.loads((await receiver.wait_for(1))[0]["body"])
    assert event["type"] == "smol.failed" and event["error"]["name"] == "SongFailed"


@pytest.fixture(scope="module")
def guarded_api(stack):
    api, url = stack.start_api(webhooks_allow_private="false")
    yield url
    _stop(api)


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1:9/hook", "loopback or private"),
        ("http://10.1.2.3/hook", "loopback or private"),
        ("http://[::1]/hook", "loopback or private"),
        ("http://localhost/hook", "loopback or private"),
        ("ftp://example.com/hook", "http(s)"),
        ("http://user:pass@example.com/hook", "without credentials"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_private_and_malformed_webhook_urls_are_refused(stack, guarded_api, url, words):
    async with httpx.AsyncClient(base_url=guarded_api, timeout=30) as client:
        response = await client.post("/", json={"prompt": "x", "webhook_url": url}, headers=stack.auth("GGUARD"))
    assert response.status_code == 400 and words in response.text, (url, response.text)


def test_signatures_cover_body_and_time():
    body = b'{"type":"smol.completed"}'
    header = sign("secret", body)
    assert verify("secret", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("secret", body, sign("secret", body, int(time.time()) - 3600))
    assert not verify("secret", body, "garbage")
