"""SoundFlow at full length, a worker killed in the middle of a day, and the catalog commands."""

import asyncio
import signal
import subprocess
import sys
import time
import uuid

import pytest

from activities.soundflow.catalog import validate
from commands.stack import ROOT
from contracts.catalog import CatalogDayInput
from tests.support_soundflow import duration, objects, read, read_json, run_day, wait_until
from workflows.catalog import CatalogDayWorkflow

pytestmark = pytest.mark.slow


async def test_a_full_day_of_180_second_tracks(stack, temporal):
    started = time.perf_counter()
    result = await run_day(temporal, "2031-07-07", None)
    took = time.perf_counter() - started
    print(f"full day: 5 × 180 s rendered and catalogued in {took:.1f} s")
    for track in result.tracks:
        assert track.rendered
        assert abs(duration(read(stack, track.object_key)) - 180) < 1
    entries = [e for e in read_json(stack, "catalog/all.json") if e["date"] == "2031-07-07"]
    assert [e["durationSec"] for e in entries] == [180] * 5


async def test_a_worker_killed_mid_day_finishes_it_rendering_each_track_once(stack, temporal):
    queue, day = f"test-crash-{uuid.uuid4().hex[:8]}", "2031-08-08"
    options = {"task_queue": queue, "catalog_schedule": "false", "catalog_render_processes": 1}
    worker = stack.start_worker(**options)
    folder = objects(stack).root / "audio/free" / day
    try:
        handle = await temporal.start_workflow(CatalogDayWorkflow.run, CatalogDayInput(day, 120),
                                               id=f"test-crash-day-{uuid.uuid4().hex}", task_queue=queue)  # fmt: skip
        await wait_until(lambda: folder.is_dir() and any(folder.glob("*.mp3")), timeout=120, every=0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        made = {path.name: path.stat().st_ino for path in folder.glob("*.mp3")}
        assert 1 <= len(made) < 5, f"the kill should land mid-day: {sorted(made)}"
        await asyncio.sleep(1)
        worker = stack.start_worker(**options)
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # (a track stored just before the kill, its result not yet reported, is found stored and not rendered again)
    assert len(result.tracks) == 5
    assert all(track.rendered or track.object_key.rsplit("/", 1)[1] in made for track in result.tracks)
    assert {path.name: path.stat().st_ino for path in folder.glob("*.mp3") if path.name in made} == made
    assert len(list(folder.glob("*.mp3"))) == 5
    for track in result.tracks:
        assert abs(duration(read(stack, track.object_key)) - 120) < 1
    assert (await validate(objects(stack), [day])).problems == []


def _smol(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env={**stack.env, "COLUMNS": "200"},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


async def test_catalog_commands(stack, temporal):
    ran = await asyncio.to_thread(_smol, stack, "catalog", "run", "--date", "2031-09-09", "--seconds", "5")
    assert ran.returncode == 0, ran.stderr
    assert "free-2031-09-09-nature_daily: rendered" in ran.stdout
    again = await asyncio.to_thread(_smol, stack, "catalog", "run", "--date", "2031-09-09", "--seconds", "5")
    assert again.returncode == 0 and "already made" in again.stdout
    checked = await asyncio.to_thread(_smol, stack, "catalog", "validate", "--date", "2031-09-09")
    assert checked.returncode == 0 and "catalogs valid" in checked.stdout, checked.stdout + checked.stderr
    handle = temporal.get_schedule_handle("smol-catalog-daily")
    paused = await asyncio.to_thread(_smol, stack, "catalog", "pause", "--note", "maintenance")
    assert paused.returncode == 0
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "maintenance"
    assert (await asyncio.to_thread(_smol, stack, "catalog", "unpause")).returncode == 0
    assert not (await handle.describe()).schedule.state.paused
    for wrong in (["run", "--date", "2031-02-30"], ["backfill", "--from", "2031-01-02", "--to", "2031-01-01"],
                  ["premium", "--category", "polka", "--track-id", "x"]):  # fmt: skip
        refused = await asyncio.to_thread(_smol, stack, "catalog", *wrong)
        assert refused.returncode == 1 and "error" in refused.stderr, (wrong, refused.stderr)
    token = await asyncio.to_thread(_smol, stack, "token", "GPREM", "--premium")
    from smol.tokens import verify_token

    assert verify_token(stack.settings, token.stdout.strip())["premium"] is True
    assert "premium" not in verify_token(stack.settings, (await asyncio.to_thread(_smol, stack, "token", "G")).stdout
                                         .strip())  # fmt: skip
    # a damaged catalog is reported
    path = objects(stack).root / "catalog/by-category/study.json"
    original = path.read_bytes()
    try:
        path.write_text("[]")
        broken = await asyncio.to_thread(_smol, stack, "catalog", "validate", "--date", "2031-09-09")
        assert broken.returncode == 1 and "does not list the same tracks" in broken.stdout
    finally:
        path.write_bytes(original)
