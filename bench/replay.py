"""What a worker pays to bring back a run it no longer keeps in memory: replaying a recorded history of a whole smol
(tests/histories/complete-v5.json), in the SDK's sandbox and without it, alternating. A worker with more runs in
flight than SMOL_WORKER_CACHED_WORKFLOWS pays this (for the history so far) at each of their tasks.

    .venv/bin/python bench/replay.py [--runs 30] [--rounds 3]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner  # noqa: E402

from tests.test_replay import HISTORIES, _replayer  # noqa: E402
from workflows.mint import MintWorkflow  # noqa: E402
from workflows.smol import SmolWorkflow  # noqa: E402


async def cpu_per_replay(replayer: Replayer, history: WorkflowHistory, runs: int) -> float:
    """Milliseconds of CPU per replay, `runs` replays on one replayer."""

    async def histories():
        for n in range(runs):
            yield WorkflowHistory(f"{history.workflow_id}-{n}", history.events)

    started = time.process_time()
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            assert result.replay_failure is None, result.replay_failure
    return (time.process_time() - started) / runs * 1000


async def run(args) -> None:
    fixture = HISTORIES / "complete-v5.json"
    history = WorkflowHistory.from_json(fixture.stem, fixture.read_text())
    sandboxed = _replayer()
    unsandboxed = Replayer(workflows=[SmolWorkflow, MintWorkflow], data_converter=sandboxed.config()["data_converter"],
                           workflow_runner=UnsandboxedWorkflowRunner())  # fmt: skip
    figures = {"sandboxed": [], "unsandboxed": []}
    for replayer in (sandboxed, unsandboxed):
        await cpu_per_replay(replayer, history, 3)  # warm-up
    for _ in range(args.rounds):
        figures["sandboxed"].append(await cpu_per_replay(sandboxed, history, args.runs))
        figures["unsandboxed"].append(await cpu_per_replay(unsandboxed, history, args.runs))
    print(f"cores: {os.cpu_count()}; a whole smol's history ({len(history.events)} events), {args.runs} replays × "
          f"{args.rounds} rounds, alternating")  # fmt: skip
    for name, runs in figures.items():
        print(f"  {name:<12} median {statistics.median(runs):5.1f} ms of CPU per replay "
              f"(rounds: {', '.join(f'{r:.1f}' for r in runs)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
