"""Safe change: histories of real runs, recorded as JSON fixtures, replay without non-determinism on today's code.

Every change to SmolWorkflow must keep these passing; a change to a running pipeline goes behind
`workflow.patched(...)` (README, "Changing a workflow"). To record the fixtures again (new scenarios, never to make a
failing replay pass): `SMOL_RECORD_HISTORIES=1 .venv/bin/pytest tests/test_replay.py -k record`.
"""

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from activities.failures import smol_worker
from contracts.mint import MintInput
from contracts.smol import PauseSignal, Payload, ResumeSignal, SmolInput
from smol.settings import Settings
from smol.temporal import data_converter
from tests.fake_activities import mint_activities
from tests.support import CODEC_KEYS, is_paused, is_polling, wait_for
from tests.workers import FlakyImage, RefusingSongs, activities_with, start_smol, worker_for
from workflows.mint import MintWorkflow
from workflows.smol import SmolWorkflow

HISTORIES = Path(__file__).parent / "histories"
FIXTURES = sorted(HISTORIES.glob("*.json"))


def _replayer() -> Replayer:
    """Today's workflows, decoding with the test stack's codec keys (fixtures recorded before encryption are plain,
    and the codec passes plain payloads through)."""
    settings = Settings(codec_keys=CODEC_KEYS, codec_key_id="new")
    return Replayer(workflows=[SmolWorkflow, MintWorkflow], data_converter=data_converter(settings))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
async def test_recorded_history_replays_on_todays_code(fixture):
    history = WorkflowHistory.from_json(fixture.stem, fixture.read_text())
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{fixture.name}: {result.replay_failure}"
    kind, tag = fixture.stem.split("-", 1)
    if kind == "complete" and tag in ("v1", "v2"):  # recorded before indexing: they replay on the unpatched path
        assert "core_patch" not in fixture.read_text() and "analyze_smol" not in fixture.read_text()
    if kind == "complete" and tag == "v3":  # recorded after: the patched path, with its marker
        assert fixture.read_text().count("core_patch") == 1 and "analyze_smol" in fixture.read_text()
    if kind == "complete" and tag == "v4":  # and after the songs were archived together: both markers
        assert fixture.read_text().count("core_patch") == 2 and "analyze_smol" in fixture.read_text()
    if kind == "complete" and tag == "v5":  # and after independent steps overlapped: that marker, not indexing's
        markers = "".join(str(e.marker_recorded_event_attributes) for e in history.events
                          if e.HasField("marker_recorded_event_attributes"))  # fmt: skip
        assert "overlap-independent-steps" in markers and "archive-songs-together" in markers
        assert "index-after-store" not in markers and "analyze_smol" in fixture.read_text()


def test_the_fixtures_cover_each_kind_of_run():
    kinds = {"complete", "retried", "paused", "cancelled", "failed", "resumed"}
    # v1: before payload encryption and durable steps; v2: after; v4: archive together; v5: overlapping steps
    for tag in ("v1", "v2", "v4", "v5"):
        names = {f.stem.split("-", 1)[0] for f in FIXTURES if f.stem.endswith(f"-{tag}")}
        assert kinds <= names, (tag, names)
    mints = {"mintminted", "mintrebuilt", "mintexpired", "mintchainfailed", "mintrefused"}
    assert mints <= {f.stem.split("-", 1)[0] for f in FIXTURES}


async def _finish(handle):
    try:
        await handle.result()
    except WorkflowFailureError:
        pass
    return await handle.fetch_history()


async def _record(stack, pool, temporal, http, task_queue) -> dict[str, WorkflowHistory]:
    histories = {}
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        _, handle = await start_smol(temporal, task_queue, prompt="a recorded frog")
        histories["complete"] = await _finish(handle)

        smol_id, handle = await start_smol(temporal, task_queue, prompt="a paused frog")
        await handle.signal(SmolWorkflow.pause, PauseSignal("record"))
        await wait_for(http, smol_id, stack.auth("GFAIL"), until=is_paused)
        await asyncio.sleep(1)
        await handle.signal(SmolWorkflow.resume, ResumeSignal("record"))
        histories["paused"] = await _finish(handle)

    activities = activities_with(stack, pool)
    activities.providers.image = FlakyImage(activities.providers.image.named("local"), failures=2)
    async with worker_for(temporal, task_queue, activities):
        _, handle = await start_smol(temporal, task_queue, prompt="a flaky frog")
        histories["retried"] = await _finish(handle)

    activities = activities_with(stack, pool)
    activities.providers.songs.named("local").delay = 30
    async with worker_for(temporal, task_queue, activities):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a cancelled frog")
        await wait_for(http, smol_id, stack.auth("GFAIL"), until=is_polling)
        await handle.cancel()
        histories["cancelled"] = await _finish(handle)

    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="a refused song")
        histories["failed"] = await _finish(handle)
    async with worker_for(temporal, task_queue, activities_with(stack, pool)):
        retry = await temporal.start_workflow(
            SmolWorkflow.run, SmolInput(smol_id, Payload(address="GFAIL", prompt="ignored"), resume=True),
            id=smol_id, task_queue=task_queue,
        )  # fmt: skip
        histories["resumed"] = await _finish(retry)
    return histories


async def _record_mints(temporal, task_queue) -> dict[str, WorkflowHistory]:
    """One history per way a mint ends, with fake mint activities (the workflow is real)."""
    outcomes = {"minted": (["sent"], ["SUCCESS"]), "rebuilt": (["stale", "sent"], ["SUCCESS"]),
                "expired": (["sent"] * 3, ["EXPIRED"] * 3), "chainfailed": (["sent"], ["FAILED"]),
                "refused": ([], [])}  # fmt: skip
    histories = {}
    for outcome, (sent, confirmed) in outcomes.items():
        activities, _ = mint_activities(list(sent), list(confirmed), refuse_check=outcome == "refused")
        async with smol_worker(temporal, task_queue=task_queue, workflows=[MintWorkflow], activities=activities):
            handle = await temporal.start_workflow(
                MintWorkflow.run, MintInput(f"replay-{outcome}"), id=f"mint-replay-{uuid.uuid4().hex}",
                task_queue=task_queue,
            )  # fmt: skip
            histories[f"mint{outcome}"] = await _finish(handle)
    return histories


@pytest.mark.skipif(not os.environ.get("SMOL_RECORD_HISTORIES"), reason="records fixtures only when asked")
async def test_record_histories(stack, pool, temporal, http, task_queue):
    HISTORIES.mkdir(exist_ok=True)
    tag = os.environ.get("SMOL_RECORD_TAG", "v1")
    recorded = await _record_mints(temporal, task_queue)
    if os.environ.get("SMOL_RECORD_HISTORIES") != "mint":  # "mint": only the mint outcomes
        recorded.update(await _record(stack, pool, temporal, http, task_queue))
    for kind, history in recorded.items():
        (HISTORIES / f"{kind}-{tag}.json").write_text(history.to_json())
