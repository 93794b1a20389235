"""GET /{id}/events: live progress as Server-Sent Events."""

import asyncio
import contextlib
import json

import httpx

from contracts.smol import PauseSignal
from smol import passkeys
from tests.support import _stop, insert_smol, metric_value, wait_for
from tests.workers import activities_with, start_smol, worker_for
from workflows.smol import SmolWorkflow


async def read_events(http, path: str, headers: dict | None = None) -> list[tuple[str, dict]]:
    events, name = [], None
    async with http.stream("GET", path, headers=headers or {}, timeout=90) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


async def test_events_follow_every_step_and_end_with_the_final_state(stack, http):
    created = await http.post("/", json={"prompt": "an evented disco"}, headers=stack.auth("GEVENTS"))
    events = await read_events(http, f"/{created.text}/events", stack.auth("GEVENTS"))  # its creator watches

    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"state"}
    states = [data for name, data in events if name == "state"]
    assert "d1" in states[-1] and states[-1]["d1"]["Id"] == created.text
    steps_seen = [s["wf"]["current_step"] for s in states if "wf" in s]
    assert len(set(steps_seen)) >= 2  # several steps were reported as they happened
    song_states = [tuple(song["status"] for song in s["kv_do"].get("songs", [])) for s in states]
    assert len(set(song_states)) >= 2  # song progress changed while we watched
    assert all(states[i] != states[i + 1] for i in range(len(states) - 1))  # one event per change, no repeats


async def test_a_late_client_gets_the_current_state_first(stack, http, finished_smol):
    events = await read_events(http, f"/{finished_smol['d1']['Id']}/events")
    assert [name for name, _ in events] == ["state", "end"]
    assert events[0][1]["d1"]["Id"] == finished_smol["d1"]["Id"]
    songs = events[0][1]["kv_do"]["songs"]
    assert [s["audio"] for s in songs] == [f"{stack.api_url}/song/{s['music_id']}.mp3" for s in songs]


async def test_others_see_only_the_progress_of_a_private_smol_then_404(stack, http):
    assert (await http.get(f"/{'d' * 64}/events")).status_code == 404
    created = await http.post("/", json={"prompt": "private events", "public": False}, headers=stack.auth("GPRIV"))
    events = await read_events(http, f"/{created.text}/events")
    states = [data for name, data in events if name == "state"]
    assert states and all(
        state == {"kv_do": {"image": state["kv_do"]["image"]}, "wf": {"status": state["wf"]["status"]}, "liked": False}
        for state in states
    ), states
    assert events[-1] == ("error", {"status": 404, "message": "smol not found"})  # finished: its owner's only
    assert (await http.get(f"/{created.text}/events")).status_code == 404
    await wait_for(http, created.text, stack.auth("GPRIV"))


async def test_many_watchers_of_one_smol_share_one_workflow_view(stack, http, pool, temporal, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a much watched frog")
        await handle.signal(SmolWorkflow.pause, PauseSignal("watched"))
        await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
        before = metric_value((await http.get("/metrics")).text, "smol_api_workflow_views_total")

        async def watch_for(seconds: float) -> int:
            states = 0
            async with http.stream("GET", f"/{smol_id}/events") as response:
                try:
                    async with asyncio.timeout(seconds):
                        async for line in response.aiter_lines():
                            states += line.startswith("event: state")
                except TimeoutError:
                    pass
            return states

        watchers = await asyncio.gather(*(watch_for(3) for _ in range(8)))
        views = metric_value((await http.get("/metrics")).text, "smol_api_workflow_views_total") - before
        await handle.terminate("watched enough")
    assert all(seen >= 1 for seen in watchers)
    # 8 clients polling every 0.5 s for 3 s would be ~48 views each on their own; shared, one per 0.4 s
    assert 1 <= views <= 14, views


async def test_others_see_a_public_smol_only_once_it_was_found_safe(stack, http):
    created = await http.post("/", json={"prompt": "a disco for everyone"}, headers=stack.auth("GEVENTS"))
    states = [data for name, data in await read_events(http, f"/{created.text}/events") if name == "state"]
    for state in states:
        if "d1" not in state and (state["kv_do"].get("nsfw") or {}).get("safe") is not True:
            assert set(state["kv_do"]) == {"image"} and set(state["wf"]) == {"status"}, state
    assert any(set(state["kv_do"]) == {"image"} for state in states)  # it was watched before the verdict
    assert "d1" in states[-1] and states[-1]["kv_do"]["payload"]["prompt"] == "a disco for everyone"


async def test_past_the_most_live_streams_a_new_one_is_refused_until_one_ends(stack, pool, temporal, task_queue):
    """At most 3 live streams in the process (503 past it) and 2 per caller (429): one client cannot take them all.
    A finished smol's stream, which ends at once, is always served."""
    api, url = stack.start_api(max_event_streams=3, max_event_streams_per_client=2)
    finished = (await insert_smol(pool, "GCROWD"))["id"]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http, worker_for(temporal, task_queue,
                                                                                 activities_with(stack, pool)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a crowded frog")
            await handle.signal(SmolWorkflow.pause, PauseSignal("crowded"))
            await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
            async with http.stream("GET", f"/{smol_id}/events") as first, \
                    http.stream("GET", f"/{smol_id}/events") as second:  # fmt: skip
                assert first.status_code == second.status_code == 200
                lines = [first.aiter_lines(), second.aiter_lines()]  # (kept: one dropped closes its stream)
                for each in lines:
                    await anext(each)  # (running)
                async with asyncio.timeout(10), http.stream("GET", f"/{smol_id}/events") as refused:
                    assert refused.status_code == 429 and refused.headers["retry-after"]  # (this caller's two)
                async with http.stream("GET", f"/{smol_id}/events", headers=stack.auth("GWATCHER")) as third:
                    assert third.status_code == 200
                    lines.append(third.aiter_lines())
                    await anext(lines[-1])
                    async with asyncio.timeout(10), http.stream("GET", f"/{smol_id}/events",
                                                                headers=stack.auth("GLATE")) as refused:  # fmt: skip
                        assert refused.status_code == 503 and refused.headers["retry-after"]  # (all three)
                    assert [name for name, _ in await read_events(http, f"/{finished}/events")] == ["state", "end"]
            for _ in range(40):  # closed by their clients: a new one may open
                async with http.stream("GET", f"/{smol_id}/events") as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.25)
            assert again.status_code == 200
            async with contextlib.AsyncExitStack() as burst:  # (all asked at once: the count is taken at the check)
                opening = [burst.enter_async_context(http.stream("GET", f"/{smol_id}/events", headers=stack.auth(
                    "GBURST"))) for _ in range(12)]  # fmt: skip
                statuses = sorted(response.status_code for response in await asyncio.gather(*opening))
                assert statuses[:2] == [200, 200] and set(statuses[2:]) <= {429, 503}, statuses
            await handle.terminate("enough")
    finally:
        _stop(api)


async def test_a_stream_ends_soon_after_its_callers_session_or_key_does(stack, http, temporal, task_queue, pool):
    """A stream checks its caller's credentials every few seconds: ending every session of the passkey in another
    API process (which ends the API keys the sessions made too) closes the streams they opened with a 401 event,
    well within the memo of sessions a process keeps for other requests (SMOL_SESSION_CHECK_SECONDS, 30 s)."""
    from soft_webauthn import SoftWebauthnDevice

    from tests.test_auth import login, registration, wallet_of

    credential = registration(SoftWebauthnDevice())
    signed_in = await login(http, "create", credential, wallet_of(credential))
    http.cookies.clear()
    session = {"Authorization": f"Bearer {signed_in.text}"}
    key = {"X-API-Key": (await http.post("/keys", json={"name": "stream"}, headers=session)).json()["key"]}
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a watched frog")
        await handle.signal(SmolWorkflow.pause, PauseSignal("watched"))
        await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
        watching = [asyncio.create_task(read_events(http, f"/{smol_id}/events", headers)) for headers in (session, key)]
        await asyncio.sleep(1)
        assert not any(task.done() for task in watching)
        await passkeys.end_sessions(pool, credential["id"], wallet_of(credential))  # (as another API process does)
        async with asyncio.timeout(12):
            for events in await asyncio.gather(*watching):
                name, data = events[-1]
                assert name == "error" and data["status"] == 401, events[-1]
        await handle.terminate("enough")


async def test_a_stream_ends_soon_after_its_callers_token_expires(stack, http, temporal, task_queue, pool):
    """A stream opened with a session token that expires a few seconds later ends with a 401 event then: the token
    was checked once, when the stream opened."""
    import time

    import jwt

    from smol.tokens import ALGORITHM

    now = int(time.time())
    claims = {"sub": "GEXPIRING", "key": "", "usr": "", "iat": now, "exp": now + 3}
    token = jwt.encode(claims, stack.settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a frog watched for a while")
        await handle.signal(SmolWorkflow.pause, PauseSignal("watched"))
        await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
        watching = asyncio.create_task(read_events(http, f"/{smol_id}/events", {"Authorization": f"Bearer {token}"}))
        await asyncio.sleep(1)
        assert not watching.done()  # (valid when it opened)
        async with asyncio.timeout(12):
            name, data = (await watching)[-1]
        assert name == "error" and data["status"] == 401 and "expired" in data["message"], (name, data)
        assert time.time() >= now + 3
        await handle.terminate("enough")
