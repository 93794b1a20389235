"""Transient failures are retried, permanent ones end the smol with a clear error; pause, resume and cancel.

These run an in-process worker on their own task queue, with the real activities around providers that fail
on purpose, and read the result through the real API.
"""

import asyncio

from temporalio.client import WorkflowFailureError

from contracts.smol import PauseSignal, Payload, ResumeSignal, SmolInput
from smol import repo
from tests.support import is_paused, is_polling, wait_for
from tests.workers import FlakyImage, RefusingSongs, activities_with, start_smol, worker_for
from workflows.smol import SmolWorkflow


async def test_transient_provider_failures_are_retried_and_the_smol_completes(stack, pool, temporal, http, task_queue):
    activities = activities_with(stack, pool)
    flaky = FlakyImage(activities.providers.image.named("local"), failures=2)
    activities.providers.image = flaky
    async with worker_for(temporal, task_queue, activities):
        smol_id, handle = await start_smol(temporal, task_queue)
        result = await handle.result()
    assert result.smol_id == smol_id and flaky.calls == 3
    rows = await pool.fetch("SELECT ok FROM provider_calls WHERE smol_id = $1 AND step = 'image' ORDER BY id", smol_id)
    assert [r["ok"] for r in rows] == [False, False, True]
    body = (await http.get(f"/{smol_id}")).json()
    assert body["d1"]["Id"] == smol_id


async def test_non_retryable_song_failure_ends_the_smol_with_a_clear_error(stack, pool, temporal, http, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a refused song")
        try:
            await handle.result()
            raise AssertionError("the workflow should have failed")
        except WorkflowFailureError as exc:
            assert exc.cause.type == "SongFailed"
        body = (await http.get(f"/{smol_id}")).json()  # answered by the workflow's query
    assert body["wf"]["status"] == "errored"
    assert body["wf"]["error"]["name"] == "SongFailed" and "status -1" in body["wf"]["error"]["message"]
    assert body["kv_do"]["lyrics"]["title"]  # the finished steps are still shown
    assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol_id) == 0

    # With no worker left to answer the query, the API still reports the failure from Temporal and Postgres.
    body = (await http.get(f"/{smol_id}")).json()
    assert body["wf"]["status"] == "errored" and "status -1" in body["wf"]["error"]["message"]
    assert body["kv_do"]["song_ids"] == [f"refused-{smol_id[:8]}-a", f"refused-{smol_id[:8]}-b"]


async def test_pause_holds_at_the_next_step_and_resume_completes(stack, pool, temporal, http, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a paused frog")
        await handle.signal(SmolWorkflow.pause, PauseSignal("test"))
        body = await wait_for(http, smol_id, stack.auth("GFAIL"), until=is_paused)
        held_at = body["wf"]["current_step"]
        await asyncio.sleep(1.5)
        status = await handle.query(SmolWorkflow.status)
        assert status.status == "paused" and status.current_step == held_at
        assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol_id) == 0
        await handle.signal(SmolWorkflow.resume, ResumeSignal("test"))
        result = await handle.result()
    assert result.smol_id == smol_id


async def test_cancel_ends_the_run_and_leaves_no_row_and_no_object(stack, pool, temporal, http, task_queue):
    activities = activities_with(stack, pool)
    activities.providers.songs.named("local").delay = 30  # long enough to cancel while the songs are being made
    async with worker_for(temporal, task_queue, activities):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a cancelled frog")
        await wait_for(http, smol_id, stack.auth("GFAIL"), until=is_polling)
        await handle.cancel()
        try:
            await handle.result()
            raise AssertionError("the workflow should have been cancelled")
        except WorkflowFailureError:
            pass
    assert (await http.get(f"/{smol_id}")).status_code == 404  # nothing of it is left
    for table, column in [("smols", "id"), ("smol_steps", "smol_id"), ("smol_songs", "smol_id"),
                          ("provider_calls", "smol_id")]:  # fmt: skip
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", smol_id) == 0, table
    assert not (stack.settings.object_root() / f"{smol_id}.png").exists()
    history = [e async for e in handle.fetch_history_events()]
    assert any(e.activity_task_scheduled_event_attributes.activity_type.name == "discard_smol" for e in history)


async def test_a_retry_run_reuses_every_finished_step_and_remakes_the_failed_songs(
    stack, pool, temporal, http, task_queue
):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a second chance")
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
    refused = [f"refused-{smol_id[:8]}-a", f"refused-{smol_id[:8]}-b"]

    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        retry = await temporal.start_workflow(
            SmolWorkflow.run,
            SmolInput(smol_id, Payload(address="GFAIL", prompt="ignored: the saved payload wins"), resume=True),
            id=smol_id,
            task_queue=task_queue,
        )
        result = await retry.result()
        status = await retry.query(SmolWorkflow.status)

    assert result.smol_id == smol_id and not set(result.song_ids) & set(refused)
    states = {step.name: step.state for step in status.steps}
    assert [states[s] for s in ("payload", "image", "description", "lyrics", "nsfw")] == ["reused"] * 5
    assert states["submit"] == "done"
    counts = await repo.provider_call_counts(pool, smol_id)
    assert counts == {"image": 1, "description": 1, "lyrics": 1, "nsfw": 1, "submit": 2, "archive": 2}, counts
    body = (await http.get(f"/{smol_id}")).json()
    assert body["d1"]["Song_1"] == result.song_ids[0] and body["kv_do"]["payload"]["prompt"] == "a second chance"
    assert [s["music_id"] for s in body["kv_do"]["songs"]] == result.song_ids
