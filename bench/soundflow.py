"""A full free SoundFlow day (5 × 180 s tracks) rendered, stored, catalogued and validated by CatalogDayWorkflow on
a throwaway stack, wall clock from start to result; then the renderer alone, in × realtime per core (CPU time).

.venv/bin/python bench/soundflow.py [--seconds 180]
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from activities.soundflow.plan import load_plan  # noqa: E402
from activities.soundflow.render import encode, render_track  # noqa: E402
from bench.stack import bench_stack  # noqa: E402
from contracts.catalog import CatalogDayInput  # noqa: E402
from smol.temporal import connect  # noqa: E402
from workflows.catalog import CatalogDayWorkflow  # noqa: E402


async def days(settings, seconds: int) -> None:
    client = await connect(settings)
    for label, date in (("first day after worker start", "2030-01-06"), ("next day", "2030-01-07")):
        started = time.perf_counter()
        result = await client.execute_workflow(CatalogDayWorkflow.run, CatalogDayInput(date, seconds),
                                               id=f"bench-day-{date}", task_queue="bench")  # fmt: skip
        wall = time.perf_counter() - started
        tracks = ", ".join(f"{t.entry_id.rsplit('-', 1)[1]} {t.seconds:.1f}s" for t in result.tracks)
        print(f"{label} ({date}): {wall:.1f} s wall for {len(result.tracks)} × {seconds} s, rendered and catalogued "
              f"({result.entries} entries)\n  per track (render + encode + store, 2 at a time): {tracks}")  # fmt: skip


def renderer(seconds: int) -> None:
    render_cpu = encode_cpu = 0.0
    specs = load_plan().day("2030-01-06", seconds)
    for n, spec in enumerate(specs):
        t0 = time.process_time()
        samples = render_track(spec, seed=n)
        t1 = time.process_time()
        encode(samples, bitrate=192, quality=7, title="bench", artist="bench", spec=spec)
        render_cpu, encode_cpu = render_cpu + t1 - t0, encode_cpu + time.process_time() - t1
    audio = len(specs) * seconds
    print(f"renderer alone, one core, {len(specs)} × {seconds} s:")
    print(f"  synthesis  {audio / render_cpu:6.1f}× realtime per core ({render_cpu:.2f} s CPU)")
    print(f"  mp3 192k   {audio / encode_cpu:6.1f}× realtime per core ({encode_cpu:.2f} s CPU)")
    print(f"  together   {audio / (render_cpu + encode_cpu):6.1f}× realtime per core")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=180)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    with bench_stack(worker=True, catalog_schedule="false") as stack:
        asyncio.run(days(stack["settings"], args.seconds))
    renderer(args.seconds)


if __name__ == "__main__":
    main()
