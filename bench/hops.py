"""What one workflow step costs in Temporal round trips, with eager activities on and off: a workflow of `--steps`
no-op activities, run `--runs` times on each of two dev servers (one with `system.enableActivityEagerExecution`,
one without), alternating; the time per step is the run's time over its steps.

    .venv/bin/python bench/hops.py [--steps 12] [--runs 16]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from commands.stack import temporal_binary, wait_for_port  # noqa: E402
from tests.conftest import free_port  # noqa: E402


@activity.defn
async def nothing(n: int) -> int:
    return n


@workflow.defn(sandboxed=False)  # (the same for both servers; this module is no workflow module)
class Steps:
    @workflow.run
    async def run(self, steps: int) -> int:
        for n in range(steps):
            await workflow.execute_activity(nothing, n, start_to_close_timeout=timedelta(seconds=10))
        return steps


def dev_server(eager: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--ui-port",
               str(free_port()), "--headless", "--log-level", "error"]  # fmt: skip
    if eager:
        command += ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, proc=server)
    return server, f"127.0.0.1:{port}"


async def run(args) -> None:
    servers = {eager: dev_server(eager) for eager in (False, True)}
    try:
        clients = {eager: await Client.connect(address) for eager, (_, address) in servers.items()}
        per_step: dict[bool, list[float]] = {False: [], True: []}
        workers = [Worker(client, task_queue="steps", workflows=[Steps], activities=[nothing])
                   for client in clients.values()]  # fmt: skip
        async with workers[0], workers[1]:
            for client in clients.values():  # warm both
                await client.execute_workflow(Steps.run, 3, id=str(uuid.uuid4()), task_queue="steps")
            for n in range(args.runs):
                for eager in (True, False) if n % 2 else (False, True):
                    started = time.perf_counter()
                    await clients[eager].execute_workflow(Steps.run, args.steps, id=str(uuid.uuid4()),
                                                          task_queue="steps")  # fmt: skip
                    per_step[eager].append((time.perf_counter() - started) / args.steps)
        print(f"cores: {os.cpu_count()}; {args.runs} runs of {args.steps} no-op activities on each server, alternating")
        for eager in (False, True):
            ms = [t * 1000 for t in per_step[eager]]
            print(f"  eager activities {'on ' if eager else 'off'}: per step median {statistics.median(ms):.1f} ms, "
                  f"min {min(ms):.1f} ms")  # fmt: skip
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--runs", type=int, default=16)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
