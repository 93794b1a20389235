"""Encrypted Temporal history: the codec (round trip, rotation, unknown keys, plain payloads), what a private smol
leaves in Temporal for someone without the key, the operators' remote codec routes, and `make run`'s Web UI."""

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from commands.stack import ROOT, wait_for_port
from smol.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, codec_from
from smol.settings import DEV_CODEC_KEY, DEV_CODEC_KEY_ID, Settings
from smol.temporal import data_converter
from smol.tokens import issue_token
from tests.support import CODEC_KEYS, CODEC_TOKEN, Receiver, _stop, free_port, wait_for

OLD, NEW = (base64.b64decode(CODEC_KEYS[k]) for k in ("old", "new"))
OPERATOR = "GOPERATORCODEC"
UI = "http://localhost:8233"


def plain(value) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([value])[0]


def payloads_in(message) -> list[Payload]:
    """Every Payload inside a protobuf message (maps and lists included)."""
    if isinstance(message, Payload):
        return [message]
    found = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if hasattr(value, "ListFields"):
            children = [value]
        else:
            children = list(value.values()) if hasattr(value, "values") else list(value)  # a map, or a list
        found += [p for child in children if hasattr(child, "ListFields") for p in payloads_in(child)]
    return found


def without_search_attributes(message):
    """A copy without search attributes (plain by design: they are the filters of `smol list` and the UI)."""
    copy = type(message)()
    copy.CopyFrom(message)
    stack = [copy]
    while stack:
        current = stack.pop()
        if "search_attributes" in current.DESCRIPTOR.fields_by_name:
            current.ClearField("search_attributes")
        for field, value in current.ListFields():
            if field.message_type is not None and not field.message_type.GetOptions().map_entry:
                stack += [value] if hasattr(value, "ListFields") else list(value)
    return copy


def as_json(payloads: list[Payload]) -> dict:
    return json.loads(json.dumps({"payloads": [
        {"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
         "data": base64.b64encode(p.data).decode()} for p in payloads
    ]}))  # fmt: skip


def from_json(body: dict) -> list[Payload]:
    return [
        Payload(metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
                data=base64.b64decode(p.get("data", "")))
        for p in body.get("payloads", [])
    ]  # fmt: skip


# The codec


async def test_round_trip_seals_every_payload_under_the_current_key():
    codec = EncryptionCodec({"new": NEW}, "new")
    originals = [plain({"prompt": "a frog sings"}), plain("lyrics"), plain(None)]
    sealed = await codec.encode(originals)
    for payload in sealed:
        assert payload.metadata["encoding"] == ENCODING and payload.metadata[KEY_ID] == b"new"
        assert b"frog" not in payload.SerializeToString()
    assert sealed[0].data != (await codec.encode(originals[:1]))[0].data, "a fresh nonce every time"
    assert await codec.decode(sealed) == originals


async def test_after_a_rotation_old_runs_open_and_new_payloads_use_the_new_key():
    before = EncryptionCodec({"old": OLD}, "old")
    after = EncryptionCodec({"old": OLD, "new": NEW}, "new")
    written_before = await before.encode([plain("a run from before the rotation")])
    assert await after.decode(written_before) == [plain("a run from before the rotation")]
    written_after = await after.encode([plain("a new run")])
    assert written_after[0].metadata[KEY_ID] == b"new"
    with pytest.raises(CodecError, match="unknown key id 'new'.*SMOL_CODEC_KEYS"):
        await before.decode(written_after)


async def test_unknown_key_wrong_key_and_altered_bytes_fail_clearly():
    sealed = (await EncryptionCodec({"k9": OLD}, "k9").encode([plain("x")]))[0]
    with pytest.raises(CodecError, match="unknown key id 'k9'"):
        await EncryptionCodec({"new": NEW}, "new").decode([sealed])
    with pytest.raises(CodecError, match="does not open"):
        await EncryptionCodec({"k9": NEW}, "k9").decode([sealed])
    altered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="does not open"):
        await EncryptionCodec({"k9": OLD}, "k9").decode([altered])
    with pytest.raises(ValueError, match="SMOL_CODEC_KEY_ID 'nope'"):
        EncryptionCodec({"k9": OLD}, "nope")
    with pytest.raises(ValueError, match="32 random bytes"):
        codec_from(Settings(codec_keys={"short": base64.b64encode(b"too short").decode()}, codec_key_id="short"))


async def test_plain_payloads_pass_through_as_runs_from_before_the_codec_and_replay_fixtures_are():
    converter = data_converter(Settings())
    assert await converter.decode([plain({"prompt": "old run"})], [dict]) == [{"prompt": "old run"}]
    fixture = ROOT / "tests" / "histories" / "complete-v1.json"  # recorded before the codec: plain
    history = WorkflowHistory.from_json("fixture", fixture.read_text())
    payloads = payloads_in(History(events=history.events))
    assert payloads and await converter.payload_codec.decode(payloads) == payloads


async def test_the_dev_key_is_the_default_and_failures_are_encrypted_too():
    settings = Settings()
    assert settings.codec_key_id == DEV_CODEC_KEY_ID
    assert settings.codec_keys[DEV_CODEC_KEY_ID].get_secret_value() == DEV_CODEC_KEY
    converter = data_converter(settings)
    failure = Failure()
    await converter.encode_failure(ApplicationError("lyrics of a secret song", {"prompt": "secret"}), failure)
    assert b"secret" not in failure.SerializeToString() and failure.message == "Encoded failure"
    assert str(await converter.decode_failure(failure)) == "lyrics of a secret song"


# What a private smol leaves in Temporal


@pytest_asyncio.fixture(scope="module")
async def private_smol(stack, http):
    receiver = Receiver([])
    address = f"GPRIVATE{uuid.uuid4().hex[:10].upper()}"
    prompt = f"a private lullaby about {uuid.uuid4().hex}"
    webhook = f"{receiver.url}/{uuid.uuid4().hex}"
    response = await http.post("/", json={"prompt": prompt, "public": False, "webhook_url": webhook},
                               headers=stack.auth(address))  # fmt: skip
    assert response.status_code == 200, response.text
    body = await wait_for(http, response.text, stack.auth(address))
    without_codec = await Client.connect(stack.settings.temporal_address)
    history = await without_codec.get_workflow_handle(response.text).fetch_history()
    yield {"id": response.text, "address": address, "prompt": prompt, "webhook": webhook, "body": body,
           "history": History(events=history.events)}  # fmt: skip
    receiver.close()


def secrets_of(smol: dict) -> dict[str, bytes]:
    lyrics = smol["body"]["kv_do"]["lyrics"]
    return {
        "prompt": smol["prompt"].encode(),
        "lyrics": json.dumps(lyrics["lyrics"])[1:-1].encode(),  # as it sits in a JSON payload
        "title": json.dumps(lyrics["title"])[1:-1].encode(),
        "webhook": smol["webhook"].encode(),
        "address": smol["address"].encode(),
    }


async def test_a_private_smols_history_read_without_the_codec_holds_none_of_its_content(private_smol):
    history = private_smol["history"]
    raw = without_search_attributes(history).SerializeToString()
    for name, needle in secrets_of(private_smol).items():
        assert needle not in raw, f"the {name} is readable in Temporal's history"
    # Patch markers (workflow.patched) are written by Temporal's core, not by our converter: they hold only the
    # patch's name, which is no content of the smol.
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.HasField("marker_recorded_event_attributes")]  # fmt: skip
    assert all(m.marker_name == "core_patch" for m in markers), [m.marker_name for m in markers]
    marker_payloads = [p.SerializeToString() for m in markers for p in payloads_in(m)]
    payloads = [p for p in payloads_in(without_search_attributes(history))
                if p.SerializeToString() not in marker_payloads]  # fmt: skip
    assert len(payloads) > 20 and all(p.metadata.get("encoding") == ENCODING for p in payloads)
    assert {p.metadata[KEY_ID] for p in payloads} == {b"new"}
    # The owner's address is a search attribute, kept plain on purpose: operators filter runs by it.
    assert private_smol["address"].encode() in history.SerializeToString()


async def test_with_the_codec_the_history_decodes_and_holds_it_all(stack, private_smol):
    decoded = await codec_from(stack.settings).decode(payloads_in(private_smol["history"]))
    text = b"".join(p.data for p in decoded)
    for name, needle in secrets_of(private_smol).items():
        assert needle in text, f"the {name} is missing from the decoded history"


# The remote codec routes


@pytest.fixture(scope="module")
def operator_api(stack):
    api, url = stack.start_api(admin_addresses=json.dumps([OPERATOR]))
    yield url
    _stop(api)


@pytest_asyncio.fixture(scope="module")
async def codec_http(operator_api):
    async with httpx.AsyncClient(base_url=operator_api, timeout=30) as client:
        yield client


def encrypted_payloads(smol: dict, count: int = 6) -> list[Payload]:
    return payloads_in(without_search_attributes(smol["history"]))[:count]


async def test_operators_decode_the_history_through_the_api(stack, codec_http, private_smol):
    sealed = as_json(payloads_in(without_search_attributes(private_smol["history"])))
    ways = {
        "/codec/decode": [
            {"Authorization": f"Bearer {CODEC_TOKEN}"},  # `temporal --codec-auth`, scripts
            {"Authorization": f"Bearer {stack.token(OPERATOR)}"},  # an operator's session
            {"Cookie": f"smol_token={stack.token(OPERATOR)}"},  # the UI with "include cross-origin credentials"
        ],
        f"/codec/{CODEC_TOKEN}/decode": [{}],  # the UI of `make run`: the token is the endpoint's path
    }
    for path, credentials in ways.items():
        for headers in credentials:
            response = await codec_http.post(path, json=sealed, headers={"X-Namespace": "default", **headers})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            text = b"".join(p.data for p in from_json(response.json()))
            assert private_smol["prompt"].encode() in text and private_smol["address"].encode() in text


async def test_the_temporal_cli_decodes_through_the_api_for_an_operator(stack, private_smol):
    show = [str(Path(sys.executable).parent / "temporal"), "workflow", "show", "--workflow-id", private_smol["id"],
            "--address", stack.settings.temporal_address, "--output", "json"]  # fmt: skip
    codec = ["--codec-endpoint", f"{stack.api_url}/codec"]
    as_operator = subprocess.run(show + codec + ["--codec-auth", f"Bearer {CODEC_TOKEN}"], capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
    assert as_operator.returncode == 0, as_operator.stderr
    assert private_smol["prompt"].encode() in payload_data(json.loads(as_operator.stdout))
    anonymous = subprocess.run(show + codec, capture_output=True, text=True, timeout=60)
    assert private_smol["prompt"].encode() not in payload_data(json.loads(anonymous.stdout or "{}"))


def payload_data(shown) -> bytes:
    """The bytes of every payload in `temporal workflow show --output json` (payload data is base64 there)."""
    if isinstance(shown, dict):
        found = base64.b64decode(shown["data"]) if isinstance(shown.get("data"), str) and "metadata" in shown else b""
        return found + b"".join(payload_data(v) for v in shown.values())
    if isinstance(shown, list):
        return b"".join(payload_data(v) for v in shown)
    return b""


async def test_encode_then_decode_round_trips(codec_http):
    auth = {"Authorization": f"Bearer {CODEC_TOKEN}"}
    encoded = await codec_http.post("/codec/encode", json=as_json([plain("hello operator")]), headers=auth)
    assert encoded.status_code == 200, encoded.text
    sealed = from_json(encoded.json())
    assert sealed[0].metadata["encoding"] == ENCODING and sealed[0].metadata[KEY_ID] == b"new"
    decoded = await codec_http.post(f"/codec/{CODEC_TOKEN}/decode", json=encoded.json())
    assert from_json(decoded.json()) == [plain("hello operator")]
    passed = await codec_http.post("/codec/decode", json=as_json([plain("never encrypted")]), headers=auth)
    assert from_json(passed.json()) == [plain("never encrypted")]


async def test_anonymous_and_non_operators_are_refused(stack, codec_http, http, private_smol):
    sealed = as_json(encrypted_payloads(private_smol))
    cases = [
        ("/codec/decode", {}, 401),
        ("/codec/encode", {}, 401),
        ("/codec/decode", {"Authorization": "Bearer not-the-codec-token"}, 401),
        ("/codec/decode", {"Authorization": f"Bearer {stack.token(private_smol['address'])}"}, 403),  # the owner
        ("/codec/encode", {"Authorization": f"Bearer {stack.token('GSOMEONE')}"}, 403),
        ("/codec/decode", {"Authorization": f"Basic {CODEC_TOKEN}"}, 401),
        ("/codec/not-the-token/decode", {}, 404),
        (f"/codec/{CODEC_TOKEN}x/decode", {}, 404),
    ]
    for path, headers, status in cases:
        response = await codec_http.post(path, json=sealed, headers=headers)
        assert response.status_code == status, (path, headers, response.status_code, response.text)
        assert private_smol["prompt"] not in response.text
    # on the main test API no address is an operator, so even a valid session is refused
    response = await http.post("/codec/decode", json=sealed, headers=stack.auth(OPERATOR))
    assert response.status_code == 403


async def test_bad_bodies_are_400_never_500(codec_http, private_smol):
    auth = {"Authorization": f"Bearer {CODEC_TOKEN}", "Content-Type": "application/json"}
    foreign = encrypted_payloads(private_smol, 1)[0]
    unknown_key = Payload(metadata={**foreign.metadata, KEY_ID: b"retired"}, data=foreign.data)
    altered = Payload(metadata=foreign.metadata, data=foreign.data[:-2])
    bodies = [b"", b"not json", b"\xff\xfe", b"null", b"42", b'"x"', b'{"payloads": 3}', b'{"payloads": [1]}',
              b'{"payloads": [{"metadata": {"a": 1}}]}', b'{"payloads": [{"data": {"x": 1}}]}',
              b'{"payloads": [{"metadata": {"\\ud800": "eA=="}}]}', b'{"unknown": []}', b"[" * 20000,
              json.dumps(as_json([unknown_key])).encode(), json.dumps(as_json([altered])).encode()]  # fmt: skip
    for body in bodies:
        for path in ("/codec/decode", "/codec/encode"):
            response = await codec_http.post(path, content=body, headers=auth)
            if path == "/codec/encode" and body in bodies[-2:]:
                assert response.status_code == 200  # encode leaves sealed payloads as they are
                continue
            assert response.status_code == 400, (path, body[:40], response.status_code, response.text)
    response = await codec_http.post("/codec/decode", content=json.dumps(as_json([unknown_key])), headers=auth)
    assert "unknown key id 'retired'" in response.text


async def test_cors_lets_the_web_ui_in_and_no_one_else(codec_http):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    for origin in (UI, "http://127.0.0.1:8233"):
        response = await codec_http.options(f"/codec/{CODEC_TOKEN}/decode", headers={"Origin": origin, **preflight})
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in response.headers["access-control-allow-headers"].lower()
        assert "POST" in response.headers["access-control-allow-methods"]
    response = await codec_http.options("/codec/decode", headers={"Origin": "https://evil.example", **preflight})
    assert response.status_code == 403 and "access-control-allow-origin" not in response.headers
    answered = await codec_http.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": []}, headers={"Origin": UI})
    assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == UI
    assert "Origin" in answered.headers["vary"]
    refused = await codec_http.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == UI  # the UI sees why
    other = await codec_http.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": []},
                                  headers={"Origin": "https://evil.example"})  # fmt: skip
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


# `make run`: no configuration, and the dev server's Web UI decodes through the API


def _free_pair() -> tuple[int, int]:
    """A free port whose +1000 (where `make run` puts the Web UI) is free too."""
    import socket

    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1000))
                return port, port + 1000
            except OSError:
                continue


@pytest.mark.slow
async def test_make_run_with_no_configuration_serves_the_ui_a_working_codec(tmp_path):
    temporal_port, ui_port = _free_pair()
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOL_")}
    env.update(SMOL_DATA_DIR=str(tmp_path / "data"), SMOL_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
               SMOL_API_PORT=str(api_port), SMOL_WORKER_METRICS_ADDRESS=f"127.0.0.1:{free_port()}")  # fmt: skip
    log = open(tmp_path / "stack.log", "wb")
    stack = subprocess.Popen([sys.executable, "-m", "commands.stack"], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_for_port("127.0.0.1", api_port, timeout=120, proc=stack)
        async with httpx.AsyncClient(timeout=30) as client:
            settings = (await client.get(f"http://127.0.0.1:{ui_port}/api/v1/settings")).json()
            endpoint = settings["Codec"]["Endpoint"]
            assert endpoint.startswith(f"http://127.0.0.1:{api_port}/codec/")
            dev = EncryptionCodec({DEV_CODEC_KEY_ID: base64.b64decode(DEV_CODEC_KEY)}, DEV_CODEC_KEY_ID)
            sealed = as_json(await dev.encode([plain("decoded for the operator")]))
            origin = f"http://127.0.0.1:{ui_port}"
            # what the UI's browser does: a preflight, then the POST with its namespace header
            preflight = await client.options(f"{endpoint}/decode", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace"})  # fmt: skip
            assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == origin
            response = await client.post(f"{endpoint}/decode", json=sealed,
                                         headers={"Origin": origin, "X-Namespace": "default"})  # fmt: skip
            assert response.status_code == 200, response.text
            assert from_json(response.json()) == [plain("decoded for the operator")]
            assert (await client.post(f"http://127.0.0.1:{api_port}/codec/decode", json=sealed)).status_code == 401
            # and the stack works end to end with its built-in development secrets
            token = issue_token(Settings(), "GMAKERUN")
            api = f"http://127.0.0.1:{api_port}"
            created = await client.post(f"{api}/", json={"prompt": "a make run frog", "public": False},
                                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert created.status_code == 200, created.text
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            await wait_for(client, created.text, {"Authorization": f"Bearer {token}"}, timeout=180)
        assert stack.poll() is None
    finally:
        if stack.poll() is None:
            stack.send_signal(signal.SIGINT)
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.kill()
        log.close()
