"""End-to-end time of smols made through the HTTP API, split into time inside activities (the song wait is in
the poll activity), time on timers and the rest (orchestration overhead); then throughput: `--batch` smols
started at once, smols per minute until all are done; then the peak RSS of the worker and the API. Starts its
own throwaway stack (Temporal dev server in memory, pgserver in a temp dir).

    .venv/bin/python bench/pipeline.py --smols 5 [--song-delay 0] [--song-seconds 30] [--batch 20]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import auth, bench_stack, peak_rss_mb  # noqa: E402

from smol.temporal import connect  # noqa: E402


async def timings(client: Client, smol_id: str) -> dict:
    """From the finished run's history: `visible` when its row was stored (what GET /{id} then shows), `total` to
    the end (indexing included), time inside activities, on timers, and the rest: orchestration."""
    events = [e async for e in client.get_workflow_handle(smol_id).fetch_history_events()]
    at = {e.event_id: e.event_time.ToDatetime().timestamp() for e in events}
    first, last = at[events[0].event_id], at[events[-1].event_id]
    intervals, timers, steps, names, visible = [], 0.0, {}, {}, float("nan")
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = e.activity_task_completed_event_attributes
            intervals.append((at[done.started_event_id], at[e.event_id]))
            name = names[done.scheduled_event_id]
            steps[name] = steps.get(name, 0.0) + at[e.event_id] - at[done.started_event_id]
            if name == "store_results":
                visible = at[e.event_id] - at[events[0].event_id]
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            timers += at[e.event_id] - at[e.timer_fired_event_attributes.started_event_id]
    def busy(until: float) -> float:  # time inside activities (their union: songs are archived together)
        inside, end = 0.0, 0.0
        for start, stop in sorted(intervals):
            start, stop = max(start, end), min(stop, until)
            if stop > start:
                inside, end = inside + stop - start, stop
        return inside

    total = last - first
    return {"visible": visible, "total": total, "activities": busy(last), "timers": timers,
            "overhead": total - busy(last) - timers, "overhead to visible": visible - busy(first + visible) - timers,
            "steps": steps}  # fmt: skip


async def _refuse_errors(response: httpx.Response) -> None:
    """A benchmark measures answers, not errors: stop at the first one (or at a GET that did not answer JSON)."""
    await response.aread()
    request = response.request
    if response.status_code >= 300 or request.method == "GET" and not response.content.startswith((b"{", b"[")):
        raise SystemExit(f"{request.method} {request.url.path}: {response.status_code} {response.text[:500]}")


async def run(args) -> None:
    env = {
        "local_song_delay": args.song_delay,
        "song_seconds": args.song_seconds,
        "song_poll_interval": args.poll_interval,
    }
    with bench_stack(**env) as stack:
        client = await connect(stack["settings"])
        rows = []
        hooks = {"response": [_refuse_errors]}
        async with httpx.AsyncClient(base_url=stack["url"], headers=auth("GBENCH"), timeout=60,
                                     event_hooks=hooks) as http:
            for n in range(args.smols + 1):
                started = time.perf_counter()
                smol_id = (await http.post("/", json={"prompt": f"bench {n}: a lofi frog at night"})).text
                while "d1" not in (body := (await http.get(f"/{smol_id}")).json()):
                    if body.get("wf", {}).get("status") == "errored":
                        raise SystemExit(f"smol failed: {body['wf']}")
                    await asyncio.sleep(args.client_poll)
                seen = time.perf_counter() - started
                await client.get_workflow_handle(smol_id).result()  # (indexing goes on after the row exists)
                if n == 0:
                    continue  # warm-up: imports, connection pools, first render
                rows.append({**await timings(client, smol_id), "client": seen})
        print(f"cores: {os.cpu_count()}, smols: {args.smols}, song: 2 × {args.song_seconds}s, "
              f"local song delay {args.song_delay}s, poll interval {args.poll_interval}s")  # fmt: skip
        for key in ("client", "visible", "total", "activities", "timers", "overhead", "overhead to visible"):
            values = [r[key] for r in rows]
            print(f"  {key:<19} median {statistics.median(values) * 1000:8.0f} ms   "
                  f"min {min(values) * 1000:8.0f} ms   max {max(values) * 1000:8.0f} ms")  # fmt: skip
        names = dict.fromkeys(name for r in rows for name in r["steps"])
        print("  inside activities, median ms: " + ", ".join(
            f"{name} {statistics.median(r['steps'].get(name, 0.0) for r in rows) * 1000:.0f}" for name in names))
        share = statistics.median(r["overhead"] / r["total"] for r in rows)
        print(f"  orchestration overhead: {share:.1%} of the workflow's time")
        if args.batch:
            async with httpx.AsyncClient(base_url=stack["url"], headers=auth("GBATCH"), timeout=60,
                                         event_hooks=hooks) as http:
                started = time.perf_counter()
                ids = [(await http.post("/", json={"prompt": f"batch {n}: dub"})).text for n in range(args.batch)]
                for smol_id in ids:
                    while "d1" not in (await http.get(f"/{smol_id}")).json():
                        await asyncio.sleep(0.2)
                playable = time.perf_counter() - started
                await asyncio.gather(*(client.get_workflow_handle(smol_id).result() for smol_id in ids))
                indexed = time.perf_counter() - started
            print(f"  throughput: {args.batch} smols started together, all playable in {playable:.1f}s = "
                  f"{args.batch / playable * 60:.1f} smols/min; all indexed too in {indexed:.1f}s = "
                  f"{args.batch / indexed * 60:.1f} smols/min")  # fmt: skip
        pids = stack["processes"]
        print(f"  peak RSS: worker {peak_rss_mb(pids['worker'].pid):.0f} MB, API {peak_rss_mb(pids['api'].pid):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=5)
    parser.add_argument("--song-delay", type=float, default=2.0)
    parser.add_argument("--song-seconds", type=int, default=30)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--client-poll", type=float, default=0.05, help="seconds between the client's GET /{id}")
    parser.add_argument("--batch", type=int, default=0, help="also measure throughput with this many at once")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
