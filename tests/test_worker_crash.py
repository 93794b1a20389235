"""A worker killed with SIGKILL in the middle of the song step: another worker finishes the smol, and no finished step
is called again; also when that one runs workflows outside the sandbox and keeps none in memory (each of its tasks
replays the run's history)."""

import asyncio
import signal

import pytest

from contracts.smol import Payload, SmolInput
from smol import repo
from smol.ids import new_smol_id
from tests.support import is_polling, wait_for
from workflows.smol import SmolWorkflow

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("resumed_by", [{}, {"workflow_sandbox": "false", "worker_cached_workflows": "0",
                                              "worker_workflow_tasks": "2"}],
                         ids=["same", "unsandboxed-uncached"])  # fmt: skip
async def test_killed_worker_resumes_without_calling_finished_steps_again(stack, pool, temporal, http, task_queue,
                                                                         resumed_by, tmp_path):  # fmt: skip
    worker = stack.start_worker(task_queue=task_queue, local_song_delay=6)
    try:
        smol_id = new_smol_id()
        handle = await temporal.start_workflow(
            SmolWorkflow.run, SmolInput(smol_id, Payload(address="GCRASH", prompt="crash test techno")),
            id=smol_id, task_queue=task_queue,
        )  # fmt: skip
        await wait_for(http, smol_id, stack.auth("GCRASH"), until=is_polling, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        await asyncio.sleep(1)
        assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol_id) == 0

        with open(tmp_path / "worker.log", "w") as log:
            worker = stack.start_worker(log, task_queue=task_queue, local_song_delay=6, **resumed_by)
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    assert result.smol_id == smol_id
    sandbox = "off, 0 runs cached, 2 workflow tasks" if resumed_by else "on, 1000 runs cached, 8 workflow tasks"
    assert f"(workflow sandbox {sandbox} at once)" in (tmp_path / "worker.log").read_text()
    counts = await repo.provider_call_counts(pool, smol_id)
    assert counts == {"image": 1, "description": 1, "lyrics": 1, "nsfw": 1, "submit": 1, "archive": 2}, counts
    failed = await pool.fetchval("SELECT count(*) FROM provider_calls WHERE smol_id = $1 AND NOT ok", smol_id)
    assert failed == 0
    assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol_id) == 1
