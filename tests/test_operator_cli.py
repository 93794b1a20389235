"""Operating smols from the command line: `smol list/pause/resume/cancel/retry/watch/terminate`, and the same
signals through the Temporal CLI; search attributes kept current by the workflow."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from smol import repo
from smol.store import open_store
from tests.support import CODEC_TOKEN, wait_for
from tests.support_api_clients import steady_songs
from tests.workers import RefusingSongs, activities_with, start_smol, worker_for

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


async def smol(stack, *args, env=None):
    """Run the CLI without blocking the event loop (the tests' in-process workers must keep working meanwhile)."""
    env = {**stack.env, "SMOL_API_URL": stack.api_url, **(env or {})}
    return await run([str(BIN / "smol"), *args], env=env)


async def run(command: list[str], env=None, check=False):
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120,
                                   check=check)  # fmt: skip


async def created(stack, http, address: str, prompt: str) -> str:
    response = await http.post("/", json={"prompt": prompt}, headers=stack.auth(address))
    assert response.status_code == 200
    return response.text


def slow_songs_worker(stack, pool, temporal, task_queue, tmp_path):
    """A worker whose songs take 4 s: the CLI (a new process) signals while the smol is surely still being made."""
    songs = steady_songs(open_store(stack.settings), tmp_path / "jobs", delay=4)
    return worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs))


async def test_pause_then_resume_completes(stack, http, pool, temporal, task_queue, tmp_path):
    async with slow_songs_worker(stack, pool, temporal, task_queue, tmp_path):
        smol_id, _ = await start_smol(temporal, task_queue, prompt="a pausable polka", address="GCLIPAUSE")
        assert (await smol(stack, "pause", smol_id)).returncode == 0
        owner = stack.auth("GCLIPAUSE")
        body = await wait_for(http, smol_id, owner, until=lambda b: b.get("wf", {}).get("status") == "paused")
        await asyncio.sleep(1.5)
        still = (await http.get(f"/{smol_id}", headers=owner)).json()
        assert still["wf"]["status"] == "paused" and "d1" not in still
        started = [s["name"] for s in body["wf"]["steps"] if s["state"] != "pending"]
        assert [s["name"] for s in still["wf"]["steps"] if s["state"] != "pending"] == started  # no step began
        listed = await smol(stack, "list", "--status", "paused", "--address", "GCLIPAUSE")
        assert smol_id in listed.stdout
        assert (await smol(stack, "resume", smol_id)).returncode == 0
        assert "d1" in await wait_for(http, smol_id)


async def test_cancel_leaves_no_rows(stack, http, pool, temporal, task_queue, tmp_path):
    async with slow_songs_worker(stack, pool, temporal, task_queue, tmp_path):
        smol_id, _ = await start_smol(temporal, task_queue, prompt="a cancelled cumbia", address="GCLICANCEL")
        await smol(stack, "pause", smol_id)
        await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
        result = await smol(stack, "cancel", smol_id)
        assert result.returncode == 0, result.stderr
        for _ in range(100):
            if (await http.get(f"/{smol_id}")).status_code == 404:
                break
            await asyncio.sleep(0.1)
    assert (await http.get(f"/{smol_id}")).status_code == 404
    assert await pool.fetchval("SELECT count(*) FROM smol_steps WHERE smol_id = $1", smol_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol_id) == 0


async def test_retry_reuses_the_finished_steps(stack, http, pool, temporal, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="cli retry", address="GCLIRETRY")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    listed = await smol(stack, "list", "--status", "errored", "--address", "GCLIRETRY")
    assert smol_id in listed.stdout
    result = await smol(stack, "retry", smol_id)
    assert result.returncode == 0, result.stderr
    watched = await smol(stack, "watch", smol_id)
    assert watched.returncode == 0 and "done" in watched.stderr
    counts = await repo.provider_call_counts(pool, smol_id)
    assert [counts[s] for s in ("image", "description", "lyrics", "nsfw")] == [1, 1, 1, 1]


async def test_search_attributes_follow_the_run(stack, http, temporal):
    smol_id = await created(stack, http, "GCLISEARCH", "a searchable samba")
    await wait_for(http, smol_id)
    await asyncio.sleep(1)  # visibility is eventually consistent
    found = [w async for w in temporal.list_workflows("SmolAddress = 'GCLISEARCH' AND SmolStatus = 'complete'")]
    assert [w.id for w in found] == [smol_id]
    listed = await smol(stack, "list", "--address", "GCLISEARCH")
    assert smol_id in listed.stdout and "complete" in listed.stdout


async def test_temporal_cli_signals_work_too(stack, http, pool, temporal, task_queue, tmp_path):
    address = ["--address", stack.settings.temporal_address,  # payloads are encrypted: decode through the API
               "--codec-endpoint", f"{stack.api_url}/codec", "--codec-auth", f"Bearer {CODEC_TOKEN}"]  # fmt: skip
    async with slow_songs_worker(stack, pool, temporal, task_queue, tmp_path):
        smol_id, _ = await start_smol(temporal, task_queue, prompt="a temporal tango", address="GCLITEMPORAL")
        pause = await run([str(BIN / "temporal"), "workflow", "signal", "--workflow-id", smol_id, "--name", "pause",
                           "--input", "{}", *address])  # fmt: skip
        assert pause.returncode == 0, pause.stderr
        await wait_for(http, smol_id, until=lambda b: b.get("wf", {}).get("status") == "paused")
        query = await run([str(BIN / "temporal"), "workflow", "query", "--workflow-id", smol_id, "--type", "status",
                           *address])  # fmt: skip
        assert '"paused"' in query.stdout
        await run([str(BIN / "temporal"), "workflow", "signal", "--workflow-id", smol_id, "--name", "resume",
                   "--input", "{}", *address], check=True)  # fmt: skip
        assert "d1" in await wait_for(http, smol_id)


async def test_terminate_and_clear_errors(stack, http, pool, temporal, task_queue, tmp_path):
    async with slow_songs_worker(stack, pool, temporal, task_queue, tmp_path):
        smol_id, _ = await start_smol(temporal, task_queue, prompt="a terminated tune", address="GCLITERM")
        await smol(stack, "pause", smol_id)
        assert (await smol(stack, "terminate", smol_id, "--reason", "stuck")).returncode == 0
    for status in ("running", "paused", "queued"):  # its own SmolStatus stays "paused" forever: never shown as live
        assert smol_id not in (await smol(stack, "list", "--status", status, "--address", "GCLITERM")).stdout
    terminated = (await smol(stack, "list", "--status", "terminated", "--address", "GCLITERM")).stdout
    assert smol_id in terminated and "\tterminated\t" in terminated
    assert (await smol(stack, "list", "--status", "nonsense")).returncode == 1
    unknown = await smol(stack, "pause", "f" * 64)
    assert unknown.returncode == 1 and "no such smol" in unknown.stderr
    down = await smol(stack, "list", env={"SMOL_TEMPORAL_ADDRESS": "127.0.0.1:9"})
    assert down.returncode == 1 and "cannot reach Temporal" in down.stderr
