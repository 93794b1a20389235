"""Many smols in flight at once, waiting on a slow song provider: the worker's memory while they wait, that every
one finishes, and GET /{id} of a finished smol meanwhile (wrk, 10 connections, 3 s every minute) against the same
before the smols start. The slow service is a fake of the AI Song Generator service (tests/fakes.py) in a process of
its own, each job done `--song-delay` seconds after it is asked for (`--songs local`: the local provider, which
renders the songs in the worker). With a poll interval above 10 s polling is retry-driven, so a waiting smol holds
no activity slot.

    .venv/bin/python bench/scale.py [--smols 1000] [--song-delay 60] [--song-seconds 2] [--poll-interval 15]
                                    [--songs remote|local] [--cached-workflows 1000] [--workflow-tasks 8]
                                    [--no-sandbox] [--worker-nice 10]
"""

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections import deque
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import seed, wrk  # noqa: E402
from stack import bench_stack, peak_rss_mb  # noqa: E402

from contracts.smol import Payload, SmolInput  # noqa: E402
from smol.ids import new_smol_id  # noqa: E402
from smol.temporal import connect  # noqa: E402
from tests.fakes import FakeSongService  # noqa: E402
from workflows.smol import SmolWorkflow  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_songs(song_delay: float, song_seconds: int, answer) -> None:
    """The fake song service, serving one rendered song for every job, until the bench ends (its own process)."""
    from activities.providers.local.music import encode_mp3, plan, render
    from tests.fakes import FakeSongService

    arrangement = plan(["synthwave"], 1)
    audio = encode_mp3(render(arrangement, song_seconds, 0, 1), title="t", artist="a", arrangement=arrangement,
                       cover_png=None)  # fmt: skip
    service = FakeSongService(audio, ready_after=song_delay)
    service.requests = deque(maxlen=100)  # (it keeps every request otherwise)
    service.completed = deque(maxlen=100)
    answer.send(service.url)
    while True:
        time.sleep(3600)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def run(args) -> None:
    env = {"local_song_delay": args.song_delay, "song_seconds": args.song_seconds,
           "song_poll_interval": args.poll_interval, "song_stall_seconds": args.song_delay * 4,
           "worker_cached_workflows": args.cached_workflows, "worker_workflow_tasks": args.workflow_tasks,
           "workflow_sandbox": args.sandbox}  # fmt: skip
    service = None
    if args.songs == "remote":
        spawn = multiprocessing.get_context("spawn")
        mine, theirs = spawn.Pipe()
        service = spawn.Process(target=serve_songs, args=(args.song_delay, args.song_seconds, theirs), daemon=True)
        service.start()
        env |= {"song_providers": "aisonggenerator", "songgen_url": mine.recv(), "songgen_api_key": FakeSongService.KEY}
    try:
        await measure(args, env)
    finally:
        if service is not None:
            service.kill()


async def measure(args, env: dict) -> None:
    with bench_stack(worker_nice=args.worker_nice, **env) as stack:
        worker = stack["processes"]["worker"]
        client = await connect(stack["settings"])
        db = await asyncpg.connect(stack["database_url"])
        finished_smol = stack["url"] + "/" + (await seed(stack["database_url"], 2))[0]

        def detail_p99() -> float:  # in ms; wrk prints 850.00us, 12.34ms or 1.20s
            p99 = wrk(finished_smol, 10, 3).split("p99")[1].split()[0]
            number, unit = float(p99.rstrip("mus")), p99.lstrip("0123456789.")
            return number * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

        wrk(finished_smol, 10, 2)  # warm-up: the API's pool fills
        before = [detail_p99() for _ in range(3)]
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(50)

        async def start(n: int):
            async with semaphore:
                smol_id = new_smol_id()
                payload = Payload(address=f"GSCALE{n % 20}", prompt=f"scale {n}: a slow synthwave song")
                return await client.start_workflow(SmolWorkflow.run, SmolInput(smol_id, payload), id=smol_id,
                                                   task_queue="bench")  # fmt: skip

        await asyncio.gather(*(start(n) for n in range(args.smols)))
        print(
            f"cores: {os.cpu_count()}, {args.smols} smols started in {time.perf_counter() - started:.1f}s; "
            f"song jobs take {args.song_delay}s, songs {args.song_seconds}s ({args.songs}), poll every "
            f"{args.poll_interval}s; worker: {args.cached_workflows} runs cached, {args.workflow_tasks} workflow "
            "tasks at once, "
            f"sandbox {'on' if args.sandbox else 'off'}, niceness {args.worker_nice}"
        )

        # (not one `result()` per smol: 10,000 long polls at once exceed the namespace's concurrent poller limit)
        async def count(status: str) -> int:
            query = f"WorkflowType = 'SmolWorkflow' AND ExecutionStatus = '{status}'"
            return (await client.count_workflows(query)).count

        most_waiting, rss_samples, during, next_probe = 0, [], [], time.perf_counter() + 30
        while await count("Running"):
            if time.perf_counter() > next_probe:
                during.append(await asyncio.to_thread(detail_p99))
                next_probe = time.perf_counter() + 60
            waiting = await db.fetchval(
                "SELECT count(DISTINCT smol_id) FROM smol_songs s WHERE s.object_key IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM smols WHERE smols.id = s.smol_id)"
            )
            most_waiting = max(most_waiting, waiting)
            rss_samples.append(rss_mb(worker.pid))
            await asyncio.sleep(2)
        finished = await count("Completed")
        elapsed = time.perf_counter() - started
        worker_cpu = cpu_seconds(worker.pid)
        rows = await db.fetchval("SELECT count(*) FROM smols")
        print(
            f"  finished: {finished}/{args.smols} in {elapsed:.0f}s ({rows} rows); "
            f"most waiting on songs at once: {most_waiting}"
        )
        print(f"  worker CPU: {worker_cpu:.0f} s in all, {worker_cpu / max(finished, 1) * 1000:.0f} ms per smol")
        print(f"  worker RSS while in flight: median {sorted(rss_samples)[len(rss_samples) // 2]:.0f} MB, "
              f"peak {peak_rss_mb(worker.pid):.0f} MB")  # fmt: skip
        print(f"  GET /{{id}} p99 before: {', '.join(f'{v:.1f}' for v in before)} ms; while in flight: median "
              f"{sorted(during)[len(during) // 2] if during else float('nan'):.1f} ms, worst "
              f"{max(during, default=float('nan')):.1f} ms ({len(during)} probes)")  # fmt: skip
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=1000)
    parser.add_argument("--song-delay", type=float, default=60)
    parser.add_argument("--song-seconds", type=int, default=2)
    parser.add_argument("--poll-interval", type=float, default=15)
    parser.add_argument("--songs", choices=["remote", "local"], default="remote")
    parser.add_argument("--cached-workflows", type=int, default=1000, help="SMOL_WORKER_CACHED_WORKFLOWS")
    parser.add_argument("--workflow-tasks", type=int, default=8, help="SMOL_WORKER_WORKFLOW_TASKS")
    parser.add_argument("--worker-nice", type=int, default=10, help="the worker's niceness (docker-compose's)")
    parser.add_argument("--sandbox", action=argparse.BooleanOptionalAction, default=True, help="SMOL_WORKFLOW_SANDBOX")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
