"""Webhooks: signed events on completion and failure, retried with backoff, never to private addresses by default."""

import asyncio
import datetime
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.client import WorkflowFailureError

from contracts.smol import Payload, SmolInput
from smol import webhooks
from smol.errors import InvalidInput, ServiceUnavailable, TooManyRequests
from smol.ids import new_smol_id
from smol.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, deliver, is_public, resolve_destination, sign, verify
from tests.support import WEBHOOK_SECRET, Receiver, _stop, wait_for
from tests.workers import RefusingSongs, activities_with, worker_for
from workflows.smol import SmolWorkflow


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
        ("http://[::127.0.0.1]/hook", "loopback or private"),
        ("http://[64:ff9b::7f00:1]/hook", "loopback or private"),
        ("http://[2002:7f00:1::]/hook", "loopback or private"),
        ("http://[::ffff:10.0.0.1]/hook", "loopback or private"),
        ("http://localhost/hook", "loopback or private"),
        ("ftp://example.com/hook", "http(s)"),
        ("http://user:pass@example.com/hook", "without credentials"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
        ("http://xn--/hook", "not a valid URL"),  # (a malformed IDNA label)
        ("http://xn--zz-zz.example/hook", "not a valid URL"),
    ],
)
async def test_private_and_malformed_webhook_urls_are_refused(stack, guarded_api, url, words):
    async with httpx.AsyncClient(base_url=guarded_api, timeout=30) as client:
        response = await client.post("/", json={"prompt": "x", "webhook_url": url}, headers=stack.auth(f"G{url}"))
    assert response.status_code == 400 and words in response.text, (url, response.text)


async def test_webhook_hosts_are_looked_up_only_within_the_callers_run_allowance(stack):
    """A lookup holds a resolver thread for up to seconds: a caller past SMOL_CREATES_PER_MINUTE gets 429 before
    any lookup, so one caller cannot keep the resolvers busy with names that never answer."""
    api, url = stack.start_api(creates_per_minute=2, webhooks_allow_private="false")
    address = f"GLOOKUPS{secrets.token_hex(4)}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async def create(host: str) -> httpx.Response:
                body = {"prompt": "x", "webhook_url": f"http://{host}/hook"}
                return await client.post("/", json=body, headers=stack.auth(address))

            assert [(await create("no-such-host.invalid")).status_code for _ in range(2)] == [400, 400]
            refused = await create("no-such-host.invalid")
            assert refused.status_code == 429 and "retry-after" in refused.headers, refused.text
    finally:
        _stop(api)


def test_signatures_cover_body_and_time():
    body = b'{"type":"smol.completed"}'
    header = sign("secret", body)
    assert verify("secret", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("secret", body, sign("secret", body, int(time.time()) - 3600))
    assert not verify("secret", body, "garbage")


# Where a webhook may go, and where it is actually sent (issue 11 item 4)

EMBEDDED_PRIVATE_V4 = [
    "::127.0.0.1",  # IPv4-compatible (::/96)
    "::",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:192.168.1.1",
    "::ffff:0:10.0.0.1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::7f00:1",  # NAT64 local-use prefix
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
]
OTHER_NON_PUBLIC_V6 = ["fe80::1", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1", "100::1", "2001:db8::1"]
PUBLIC = ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE_V4 + OTHER_NON_PUBLIC_V6)
async def test_ipv6_forms_of_private_addresses_are_refused(address):
    assert not is_public(address)
    with pytest.raises(InvalidInput, match="loopback or private"):
        await resolve_destination(f"http://[{address}]:8080/hook", allow_private=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_whatever_their_form(address):
    assert is_public(address)


class Resolver:
    """A name server that answers `answers` in turn (the last one from then on), as a DNS-rebinding attacker's does."""

    def __init__(self, monkeypatch, *answers: str):
        self.answers, self.asked = list(answers), []
        monkeypatch.setattr(webhooks, "_lookup", self.getaddrinfo)

    async def getaddrinfo(self, host, port, *args, **kwargs):
        self.asked.append(host)
        address = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


async def test_a_rebinding_name_is_sent_to_the_address_that_was_checked(monkeypatch, receiver):
    """Checked as 127.0.0.1 (private allowed here), then the name moves to 127.0.0.2 where nothing listens."""
    resolver = Resolver(monkeypatch, "127.0.0.1", "127.0.0.2")
    response = await deliver(f"http://hooks.example:{receiver.port}/hook", b"{}", {}, allow_private=True)
    assert response.status_code == 200 and resolver.asked == ["hooks.example"]
    (delivered,) = await receiver.wait_for(1)
    assert delivered["headers"]["Host"] == f"hooks.example:{receiver.port}"


class EndlessReceiver:
    """Answers 200 and then a chunked body that never ends: `size` bytes every `every` seconds."""

    def __init__(self, size: int, every: float):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.size, self.every, self.sent = self.listener.getsockname()[1], size, every, 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * self.size
            try:
                while True:
                    connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.sent += len(chunk)
                    time.sleep(self.every)
            except OSError:
                pass  # the client hung up


@pytest.mark.parametrize("size, every", [(1024, 0), (16, 0.3)])
async def test_an_endless_answer_neither_fills_the_worker_nor_holds_it(size, every):
    """Only the status matters: a fast endless answer is read up to 4 KiB, a slow one is given up on within 2 × the
    timeout in all, though each chunk comes well within the timeout."""
    receiver = EndlessReceiver(size, every)
    started = time.monotonic()
    sending = deliver(f"http://127.0.0.1:{receiver.port}/hook", b"{}", {}, allow_private=True, timeout=1)
    if every == 0:
        assert (await asyncio.wait_for(sending, 10)).status_code == 200
    else:
        with pytest.raises(httpx.TimeoutException):
            await asyncio.wait_for(sending, 10)
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.5)
    receiver.listener.close()
    assert receiver.sent < 16 * 1024 * 1024


async def test_a_name_checked_public_is_never_sent_to_loopback(monkeypatch, receiver):
    """The attacker's name answers a public address to the check, then 127.0.0.1 (our receiver)."""
    resolver = Resolver(monkeypatch, "93.184.215.14", "127.0.0.1")
    sent = []

    async def connect(request: httpx.Request) -> httpx.Response:  # stands in for the network: no internet here
        sent.append(request)
        return httpx.Response(204)

    url = f"http://hooks.example:{receiver.port}/hook"
    response = await deliver(url, b"{}", {}, allow_private=False, transport=httpx.MockTransport(connect))
    assert response.status_code == 204 and resolver.asked == ["hooks.example"]
    (request,) = sent
    assert request.url.host == "93.184.215.14" and request.url.port == receiver.port
    assert request.headers["Host"] == f"hooks.example:{receiver.port}"
    assert request.extensions["sni_hostname"] == "hooks.example"
    await asyncio.sleep(0.2)
    assert receiver.requests == []


def _tls_for(host: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list]:
    """A server context with a certificate for `host` from a fresh CA, a client context trusting only that CA, and
    the list the server puts every SNI name it is sent in."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject, issuer, key, signer, extensions):
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        builder = builder.not_valid_after(now + datetime.timedelta(hours=1))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smol test CA")])
    ca = certificate(ca_name, ca_name, ca_key, ca_key, [(x509.BasicConstraints(ca=True, path_length=None), True)])
    leaf = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), ca_name, key, ca_key,
                       [(x509.SubjectAlternativeName([x509.DNSName(host)]), False)])  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as chain:
        chain.write(key_pem.decode() + pem(leaf))
        chain.flush()
        server.load_cert_chain(chain.name)
    names = []
    server.sni_callback = lambda sock, name, context: names.append(name)
    client = ssl.create_default_context(cadata=pem(ca))
    return server, client, names


async def test_tls_keeps_the_host_name_for_sni_and_the_certificate_check(monkeypatch):
    server, client, names = _tls_for("hooks.example")
    receiver = Receiver([], tls=server)
    try:
        resolver = Resolver(monkeypatch, "127.0.0.1", "127.0.0.2")
        url = f"https://hooks.example:{receiver.port}/hook"
        response = await deliver(url, b"{}", {}, allow_private=True, verify=client)
        assert response.status_code == 200 and resolver.asked == ["hooks.example"]
        assert names == ["hooks.example"]
        assert receiver.requests[0]["headers"]["Host"] == f"hooks.example:{receiver.port}"
        # the certificate is checked against the URL's name, not the pinned IP: another name's certificate fails
        Resolver(monkeypatch, "127.0.0.1")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await deliver(f"https://other.example:{receiver.port}/hook", b"{}", {}, allow_private=True, verify=client)
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


async def test_names_that_never_answer_tie_up_one_thread_per_caller_and_are_refused_at_once_after(monkeypatch):
    """A caller has one lookup at a time, counted until its thread ends (given up on or not): names that never
    answer cannot take the process's threads from everyone else. A host that timed out is refused at once for a
    minute, without asking DNS again."""
    released, asked = threading.Event(), []

    def slow_getaddrinfo(host, *args, **kwargs):
        asked.append(host)
        released.wait(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

    monkeypatch.setattr(webhooks, "RESOLVE_SECONDS", 0.3)
    monkeypatch.setattr(webhooks, "_slow_hosts", {})
    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    try:
        with pytest.raises(webhooks.Unresolvable, match="within"):
            await resolve_destination("https://never1.example/hook", allow_private=False, caller="GMALLORY")
        with pytest.raises(TooManyRequests):  # (its first lookup still holds a thread)
            await resolve_destination("https://never2.example/hook", allow_private=False, caller="GMALLORY")
        with pytest.raises(webhooks.Unresolvable, match="a moment ago"):
            await resolve_destination("https://never1.example/hook", allow_private=False, caller="GANN")
        assert asked == ["never1.example"]
        released.set()
        for _ in range(50):
            if "GMALLORY" not in webhooks._callers_resolving:
                break
            await asyncio.sleep(0.02)
        target, address = await resolve_destination("https://fine.example/hook", allow_private=False,
                                                    caller="GMALLORY")  # fmt: skip
        assert address == "93.184.215.14"
    finally:
        released.set()


async def test_resolving_keeps_only_real_urls():
    for url in ["http://[::1/hook", "http://example.com:99999/", "http:///hook", "http://\x00/"]:
        with pytest.raises(InvalidInput):
            await resolve_destination(url, allow_private=True)


async def test_a_host_that_resolves_too_slowly_is_refused_in_time_on_threads_of_its_own(monkeypatch):
    """(a DNS server anyone may run can answer slowly: it must hold neither the request nor the process's threads)"""
    released, threads = threading.Event(), []

    def slow_getaddrinfo(*args, **kwargs):
        threads.append(threading.current_thread().name)
        released.wait(5)
        return []

    monkeypatch.setattr(webhooks, "RESOLVE_SECONDS", 0.3)
    monkeypatch.setattr(webhooks, "_slow_hosts", {})
    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    try:
        started = time.monotonic()
        with pytest.raises(webhooks.Unresolvable, match="did not resolve within"):
            await resolve_destination("https://slow.example/hook", allow_private=False)
        assert time.monotonic() - started < 3
        assert threads[0].startswith("webhook-dns")  # (not the default executor's, which file and other work need)
        monkeypatch.setattr(webhooks, "RESOLVERS", 1)  # the one given up on still holds its thread: no more now
        with pytest.raises(ServiceUnavailable):
            await resolve_destination("https://another.example/hook", allow_private=False)
        released.set()
        for _ in range(50):  # (once it ends, lookups go on)
            if not webhooks._resolving[0]:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(webhooks.Unresolvable, match="does not resolve"):
            await resolve_destination("https://another.example/hook", allow_private=False)
    finally:
        released.set()
