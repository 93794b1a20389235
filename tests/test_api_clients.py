"""For API clients (issue 16): API keys, idempotent creates, metadata and job lists, downloads, against the real stack
(Temporal dev server, Postgres, API processes, workers)."""

import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError

from smol import idempotency
from tests.support import _stop, insert_smol, wait_for
from tests.support_api_clients import Steady, eventually, start_logged_api, start_smol
from tests.workers import RefusingSongs, activities_with, worker_for


@pytest.fixture(scope="module")
def logged_api(stack, tmp_path_factory):
    """A second API process on the same database and Temporal, logging everything, 3 new runs a minute."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    api, url = start_logged_api(stack.env, log, creates_per_minute=3)
    yield url, log
    _stop(api)


@pytest_asyncio.fixture
async def other_api(logged_api):
    async with httpx.AsyncClient(base_url=logged_api[0], timeout=30) as client:
        yield client


def someone() -> str:
    return "GKEY" + secrets.token_hex(6).upper()


async def make_key(http, stack, address: str, name: str = "robot") -> dict:
    response = await http.post("/keys", json={"name": name}, headers=stack.auth(address))
    assert response.status_code == 201, response.text
    return response.json()


# API keys


async def test_a_key_is_shown_once_stored_as_a_hash_acts_as_its_owner_and_is_refused_once_revoked(
    stack, http, pool, other_api, logged_api
):
    address = someone()
    created = await make_key(http, stack, address)
    key = created["key"]
    assert key.startswith("smol_sk_") and len(key) >= 48 and created["prefix"] == key[:12]

    row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", created["id"])
    assert row["key_hash"] == hashlib.sha256(key.encode()).digest()
    table = await pool.fetchval("SELECT string_agg(row_to_json(k)::text, '') FROM api_keys k")
    assert key not in table and key[12:] not in table
    assert row["last_used_at"] is None

    # Both headers act as the owner, on this API process and on another.
    smol = await insert_smol(pool, address, kind="private")
    for client, headers in ((http, {"Authorization": f"Bearer {key}"}), (other_api, {"X-API-Key": key})):
        response = await client.get("/created", headers=headers)
        assert response.status_code == 200, response.text
        assert [s["Id"] for s in response.json()["smols"]] == [smol["id"]]
        assert (await client.get(f"/{smol['id']}", headers=headers)).json()["d1"]["Address"] == address
    assert await pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", created["id"]) is not None

    listed = (await http.get("/keys", headers=stack.auth(address))).json()
    assert [(k["id"], k["name"], k["prefix"]) for k in listed] == [(created["id"], "robot", key[:12])]
    assert "key" not in listed[0] and listed[0]["last_used_at"]

    # A key cannot manage keys; another user cannot revoke it.
    assert (await http.post("/keys", json={"name": "x"}, headers={"X-API-Key": key})).status_code == 403
    assert (await http.delete(f"/keys/{created['id']}", headers=stack.auth(someone()))).status_code == 404

    assert (await http.delete(f"/keys/{created['id']}", headers=stack.auth(address))).status_code == 204
    for client, headers in ((http, {"Authorization": f"Bearer {key}"}), (other_api, {"X-API-Key": key})):
        response = await client.get("/created", headers=headers)
        assert response.status_code == 401 and "revoked" in response.text
    assert (await http.get(f"/{smol['id']}", headers={"X-API-Key": key})).status_code == 401
    assert (await http.delete(f"/keys/{created['id']}", headers=stack.auth(address))).status_code == 404
    assert (await http.get("/keys", headers=stack.auth(address))).json() == []
    for bad in ("smol_sk_" + "x" * 43, "nonsense", ""):
        assert (await http.get("/created", headers={"X-API-Key": bad})).status_code == 401

    log = logged_api[1].read_text(errors="replace")
    assert "GET /created" in log  # the log does hold the requests...
    assert key not in log and key[12:] not in log  # ...but never the key


async def test_a_key_in_the_session_cookie_is_refused(stack, http, pool):
    """A browser sends the cookie with other sites' requests; only a session token there is checked for where the
    request came from, so a key is taken from headers alone."""
    address = someone()
    key, smol = (await make_key(http, stack, address))["key"], (await insert_smol(pool, address))["id"]
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    made = await http.post("/mixtapes", json={"title": "t", "smols": [smol]},
                           headers={"Cookie": f"smol_token={key}", **cross_site})  # fmt: skip
    assert made.status_code == 403, made.text  # (the session's check, which a key had skipped: 201)
    assert (await http.get("/created", headers={"Cookie": f"smol_token={key}"})).status_code == 401
    assert (await http.get("/created", headers={"X-API-Key": key})).status_code == 200


async def test_a_key_shares_its_owners_rate_limit(stack, other_api):
    address = someone()
    key = (await make_key(other_api, stack, address))["key"]
    statuses = []
    for headers in (stack.auth(address), {"X-API-Key": key}, stack.auth(address), {"X-API-Key": key}):
        response = await other_api.post("/", json={"prompt": "a rate limited frog"}, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]  # 3 a minute on this API process, whichever credential


async def test_key_names_are_checked(stack, http):
    headers = stack.auth(someone())
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": 5}):
        assert (await http.post("/keys", json=body, headers=headers)).status_code == 422
    assert (await http.post("/keys", json={"name": "x"})).status_code == 401
    assert (await http.delete("/keys/key_0123456789abcdef", headers=headers)).status_code == 404
    assert (await http.delete("/keys/not-a-key", headers=headers)).status_code == 422


# Idempotent creates


async def _runs_started(pool, address: str) -> int:
    return await pool.fetchval("SELECT count(*) FROM create_requests WHERE address = $1", address)


async def test_the_same_create_with_the_same_key_is_answered_once(stack, http, pool, temporal, other_api):
    address = someone()
    headers = {**stack.auth(address), "Idempotency-Key": str(uuid.uuid4())}
    body = {"prompt": "an idempotent frog", "metadata": {"client_id": "c1"}}
    first = await http.post("/", json=body, headers=headers)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = await http.post("/", json={"metadata": {"client_id": "c1"}, "prompt": "an idempotent frog"},
                            headers=headers)  # fmt: skip
    assert (again.status_code, again.text, again.headers["idempotent-replayed"]) == (200, first.text, "true")
    assert again.headers["content-type"].startswith("text/plain")
    elsewhere = await other_api.post("/", json=body, headers=headers)  # another API process: the same answer
    assert (elsewhere.status_code, elsewhere.text) == (200, first.text)
    assert await _runs_started(pool, address) == 1

    different = await http.post("/", json={**body, "prompt": "another frog"}, headers=headers)
    assert different.status_code == 422 and "different request" in different.text
    other_route = await http.post(f"/retry/{first.text}", headers=headers)
    assert other_route.status_code == 422  # the same key on another route is another request
    assert await _runs_started(pool, address) == 1
    runs = [w async for w in temporal.list_workflows(f"WorkflowId = '{first.text}'")]
    assert len(runs) == 1

    # Another caller's key space is their own; after 24 h the key may start something new.
    theirs = await http.post("/", json=body, headers={**headers, **stack.auth(someone())})
    assert theirs.status_code == 200 and theirs.text != first.text
    await pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE address = $1",
                       address)  # fmt: skip
    later = await http.post("/", json=body, headers=headers)
    assert later.status_code == 200 and later.text != first.text
    assert await _runs_started(pool, address) == 2


async def test_twenty_identical_creates_at_once_start_one_smol(stack, http, pool):
    address = someone()
    headers = {**stack.auth(address), "Idempotency-Key": f"burst-{uuid.uuid4()}"}
    body = {"prompt": "twenty frogs at once", "public": False}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(20)))  # 20 connections open: truly at once
        responses = await asyncio.gather(*(client.post("/", json=body, headers=headers) for _ in range(20)))
    statuses = Counter(r.status_code for r in responses)
    replays = sum(1 for r in responses if r.headers.get("idempotent-replayed") == "true")
    ids = {r.text for r in responses if r.status_code == 200}
    print(f"\n20 identical creates: {statuses[200] - replays} started, {replays} replayed, {statuses[409]} told 409")
    assert set(statuses) <= {200, 409} and statuses[200] - replays == 1
    assert len(ids) == 1
    assert await _runs_started(pool, address) == 1
    smol_id = ids.pop()
    await wait_for(http, smol_id, stack.auth(address))  # the one workflow completes
    replay = await http.post("/", json=body, headers=headers)
    assert (replay.status_code, replay.text) == (200, smol_id)


async def test_a_failed_request_is_not_kept_and_other_creating_routes_replay(stack, http, pool, finished_smol):
    address = someone()
    headers = {**stack.auth(address), "Idempotency-Key": "k1"}
    for _ in range(2):  # an error is answered afresh each time, never replayed
        refused = await http.post("/mint", json={"xdr": "not-xdr", "ids": ["a" * 64]}, headers=headers)
        assert refused.status_code == 400 and "idempotent-replayed" not in refused.headers
    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE address = $1", address) == 0

    # While the first request with a key is being answered, the same request is told to come back.
    body = {"prompt": "a frog in flight"}
    digest = idempotency.request_hash("POST", "/", json.dumps(body).encode())
    await pool.execute("INSERT INTO idempotency_keys (address, key, request_hash) VALUES ($1, 'k2', $2)", address,
                       digest)  # fmt: skip
    in_flight = await http.post("/", json=body, headers={**headers, "Idempotency-Key": "k2"})
    assert in_flight.status_code == 409 and "still being answered" in in_flight.text
    assert await _runs_started(pool, address) == 0

    smol = await insert_smol(pool, address)
    body = {"title": "tape", "smols": [smol["id"]]}
    first = await http.post("/mixtapes", json=body, headers={**headers, "Idempotency-Key": "tape-1"})
    again = await http.post("/mixtapes", json=body, headers={**headers, "Idempotency-Key": "tape-1"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert await pool.fetchval("SELECT count(*) FROM mixtapes WHERE address = $1", address) == 1

    bad_key = await http.post("/mixtapes", json=body, headers={**headers, "Idempotency-Key": "x" * 256})
    assert bad_key.status_code == 422


# Metadata, titles and job lists


@pytest.mark.parametrize("change", [
    {"metadata": {"campaign_id": 5}}, {"metadata": {"bad key": "x"}}, {"metadata": {"k": "x" * 501}},
    {"metadata": {f"k{i}": "x" for i in range(21)}}, {"metadata": ["campaign_id"]}, {"metadata": "x"},
    {"metadata": {"k": "nul\u0000"}}, {"title": ""}, {"title": "   "}, {"title": "x" * 201}, {"title": "a\nb"},
    {"title": 7},
])  # fmt: skip
async def test_bad_metadata_and_titles_are_422(stack, http, change):
    response = await http.post("/", json={"prompt": "a frog", **change}, headers=stack.auth(someone()))
    assert response.status_code == 422, response.text


async def test_metadata_and_title_are_the_owners_and_filter_their_list(stack, http, pool):
    address = someone()
    campaign = secrets.token_hex(4)
    metadata = {"campaign_id": campaign, "client_id": "c-7"}
    created = await http.post("/", json={"prompt": "a tagged frog", "title": "My Tagged Frog", "metadata": metadata},
                              headers=stack.auth(address))  # fmt: skip
    smol_id = created.text
    body = await wait_for(http, smol_id, stack.auth(address))
    assert body["d1"]["Title"] == "My Tagged Frog"
    assert body["kv_do"]["payload"]["metadata"] == metadata and body["kv_do"]["payload"]["title"] == "My Tagged Frog"
    others = (await http.get(f"/{smol_id}", headers=stack.auth(someone()))).json()
    assert others["d1"]["Title"] == "My Tagged Frog"  # a public smol's title is its row's
    assert "metadata" not in others["kv_do"]["payload"] and "title" not in others["kv_do"]["payload"]
    assert "metadata" not in (await http.get(f"/{smol_id}")).json()["kv_do"]["payload"]
    plain = await insert_smol(pool, address)  # one without metadata

    async def listed(query: str) -> list:
        response = await http.get(f"/created?{query}", headers=stack.auth(address))
        assert response.status_code == 200, response.text
        return [(s["Id"], s["Status"], s["Metadata"]) for s in response.json()["smols"]]

    assert await listed(f"metadata[campaign_id]={campaign}") == [(smol_id, "complete", metadata)]
    assert await listed(f"metadata[campaign_id]={campaign}&metadata[client_id]=c-7&status=complete") == [
        (smol_id, "complete", metadata)]  # fmt: skip
    assert await listed(f"metadata[campaign_id]={campaign}&metadata[client_id]=other") == []
    assert await listed(f"metadata[campaign_id]={campaign}&status=running") == []
    assert {row[0] for row in await listed("")} == {smol_id, plain["id"]}
    page = (await http.get("/created?limit=1", headers=stack.auth(address))).json()
    assert page["pagination"]["hasMore"] and len(page["smols"]) == 1
    for bad in ("metadata[bad key]=x", "status=lost", f"metadata[k]={'x' * 501}"):
        assert (await http.get(f"/created?{bad}", headers=stack.auth(address))).status_code in (400, 422), bad


async def test_running_and_failed_smols_are_listed_by_status(stack, http, pool, temporal, task_queue):
    address = someone()
    headers = stack.auth(address)

    # Failed: a run whose songs the provider refuses.
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        failed = await start_smol(temporal, task_queue, address, prompt="a refused frog", title="Refused",
                                  metadata={"batch": "b1"})  # fmt: skip
        with pytest.raises(WorkflowFailureError):
            await temporal.get_workflow_handle(failed).result()

    # Running: a run drawing its cover for a minute, on a worker of its own.
    slow_queue = f"{task_queue}-slow"
    activities = activities_with(stack, pool)
    activities.providers.image = Steady(activities.providers.image.named("local"), {"generate": 60})
    worker = worker_for(temporal, slow_queue, activities)
    await worker.__aenter__()
    running_id = await start_smol(temporal, slow_queue, address, prompt="a waiting frog", metadata={"batch": "b1"})

    async def listed(query: str) -> list:
        response = await http.get(f"/created?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [(s["Id"], s["Status"], s["Title"], s["Metadata"]) for s in response.json()["smols"]]

    try:
        running = await eventually(lambda: listed("status=running&metadata[batch]=b1"))
        assert running == [(running_id, "running", "", {"batch": "b1"})]
        failures = await eventually(lambda: listed("status=failed"))
        assert failures == [(failed, "failed", "Refused", {"batch": "b1"})]
        assert await listed("status=failed&metadata[batch]=b2") == []
        assert await listed("status=complete") == [] and await listed("") == []
        assert (await http.get("/created?status=failed", headers=stack.auth(someone()))).json()["smols"] == []
    finally:
        await temporal.get_workflow_handle(running_id).terminate("test over")
        await worker.__aexit__(None, None, None)


# Downloads


async def test_download_names_the_file_after_the_title_and_variant(stack, http, finished_smol):
    d1 = finished_smol["d1"]
    for music_id, variant in ((d1["Song_1"], 1), (d1["Song_2"], 2)):
        response = await http.get(f"/song/{music_id}.mp3?download=1")
        assert response.status_code == 200 and response.content[:3] in (b"ID3", b"\xff\xfb")
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=\"") and f"-{variant}.mp3\"" in disposition
        name = disposition.split('"')[1]
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.") and len(name) <= 70
        assert "filename*=UTF-8''" in disposition
    assert "content-disposition" not in (await http.get(f"/song/{d1['Song_1']}.mp3")).headers
    ranged = await http.get(f"/song/{d1['Song_1']}.mp3?download=1", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and "attachment" in ranged.headers["content-disposition"]


async def test_download_of_a_private_song_needs_its_owners_key(stack, http, pool):
    address = someone()
    created = await http.post("/", json={"prompt": "a secret frog", "public": False, "title": 'Ünï "frog"/../x'},
                              headers=stack.auth(address))  # fmt: skip
    body = await wait_for(http, created.text, stack.auth(address))
    song = body["d1"]["Song_2"]
    assert (await http.get(f"/song/{song}.mp3?download=1")).status_code == 404
    key = (await make_key(http, stack, address))["key"]
    response = await http.get(f"/song/{song}.mp3?download=1", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"uni-frog-x-2.mp3\"; filename*=UTF-8''%C3%9Cn%C3%AF%20frog%20..%20x-2.mp3")


# Progress


async def test_each_state_event_and_get_of_a_smol_in_progress_carry_progress(stack, http):
    address = someone()
    created = await http.post("/", json={"prompt": "a progressing frog"}, headers=stack.auth(address))
    states = []
    async with http.stream("GET", f"/{created.text}/events", headers=stack.auth(address), timeout=90) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and "kv_do" in line:
                states.append(json.loads(line.removeprefix("data: ")))
    in_progress = [s for s in states if "wf" in s]
    assert in_progress and "d1" in states[-1] and "progress" not in states[-1]
    for state in in_progress:
        progress = state["progress"]
        assert set(progress) == {"percent", "eta_seconds", "step"} and 0 <= progress["percent"] <= 99
        assert progress["eta_seconds"] >= 0 and progress["step"] == state["wf"].get("current_step")


async def test_an_event_stream_opened_with_a_key_ends_when_the_key_is_revoked(stack, http, pool, temporal,
                                                                             task_queue):  # fmt: skip
    address = someone()
    key = await make_key(http, stack, address)
    activities = activities_with(stack, pool)  # a run drawing its cover for a minute: still in progress
    activities.providers.image = Steady(activities.providers.image.named("local"), {"generate": 60})
    events, revoked = [], None
    async with worker_for(temporal, f"{task_queue}-revoked", activities):
        smol_id = await start_smol(temporal, f"{task_queue}-revoked", address, prompt="a frog that waits")
        try:
            async with http.stream("GET", f"/{smol_id}/events", headers={"X-API-Key": key["key"]},
                                   timeout=60) as response:  # fmt: skip
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        events.append(line.removeprefix("event: "))
                    if line.startswith("data: ") and revoked is None:  # the first state: revoke the key now
                        assert (await http.delete(f"/keys/{key['id']}", headers=stack.auth(address))).status_code == 204
                        revoked = time.monotonic()
                    elif line.startswith("data: ") and events[-1] == "error":
                        assert json.loads(line.removeprefix("data: "))["status"] == 401
        finally:
            await temporal.get_workflow_handle(smol_id).terminate("test over")
    assert events[0] == "state" and events[-1] == "error" and time.monotonic() - revoked < 10


def test_operators_make_a_key_with_the_cli(stack):
    smol = str(Path(sys.executable).parent / "smol")
    address = someone()
    made = subprocess.run([smol, "key", "create", address, "--name", "ops"], env=stack.env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("smol_sk_") and "shown again" in made.stderr and key not in made.stderr
    response = httpx.get(f"{stack.api_url}/created", headers={"X-API-Key": key})
    assert response.status_code == 200 and response.json()["smols"] == []


async def test_every_route_that_reads_a_token_declares_it_for_generated_clients(http):
    """A route refusing a bad token says in /openapi.json which credentials it reads, or a generated client never
    sends them (GET /, /search and /similar read the caller themselves, so their dependencies cannot say)."""
    paths = (await http.get("/openapi.json")).json()["paths"]
    some_id = "a" * 64
    values = {"id": some_id, "smol_id": some_id, "music_id": some_id, "song_id": some_id, "key_id": "key_" + "0" * 16,
              "tag": "pop", "slug": "study", "date": "2026-11-23", "name": "x.mp3", "title": "mix"}  # fmt: skip
    undeclared, reading = [], set()
    for template, operations in paths.items():
        if "get" not in operations:
            continue
        path = template.format(**values) + ("?q=frog" if template == "/search" else "")
        answer = await http.get(path, headers={"Authorization": "Bearer nonsense"})
        if answer.status_code == 401:
            reading.add(template)
            if {"bearer": []} not in operations["get"].get("security", []):
                undeclared.append(template)
    assert undeclared == []
    assert {"/", "/search", "/search/{id}/similar", "/created"} <= reading
