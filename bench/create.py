"""POST / latency at N concurrent clients, against its floor: the raw `start_workflow` latency of the same Temporal
dev server at the same concurrency, from Python without HTTP, validation or the rate limit.

POST / runs with no worker (the smols wait in the queue), driven by wrk on the same cores as the API.

    .venv/bin/python bench/create.py [--clients 50] [--seconds 10]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import POST_SCRIPT, wrk  # noqa: E402
from stack import auth, bench_stack  # noqa: E402

from contracts.smol import Payload, SmolInput  # noqa: E402
from smol.ids import new_smol_id  # noqa: E402
from smol.settings import Settings  # noqa: E402
from smol.temporal import connect  # noqa: E402
from workflows.smol import SmolWorkflow  # noqa: E402


async def raw_starts(address: str, clients: int, seconds: float) -> tuple[list[float], float]:
    client = await connect(Settings(temporal_address=address))
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        while time.perf_counter() < deadline:
            smol_id = new_smol_id()
            started = time.perf_counter()
            await client.start_workflow(SmolWorkflow.run, SmolInput(smol_id, Payload(address="GRAW", prompt="raw")),
                                        id=smol_id, task_queue="bench")  # fmt: skip
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, time.perf_counter() - began


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share * 100) - 1]


async def run(args) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    with bench_stack(worker=False) as stack:
        script = Path(tempfile.mkdtemp()) / "post.lua"
        script.write_text(POST_SCRIPT % auth("GLOAD")["Authorization"])
        print(f"cores: {os.cpu_count()}, {args.clients} concurrent clients, {args.seconds}s each, no worker")
        print(f"  POST / (wrk)             {wrk(stack['url'] + '/', args.clients, args.seconds, script)}")
        latencies, elapsed = await raw_starts(stack["settings"].temporal_address, args.clients, args.seconds)
        p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
        rate = len(latencies) / elapsed
        print(f"  start_workflow (floor)   p50 {p50:7.1f}ms   p99 {p99:7.1f}ms   {rate:8.1f} starts/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
