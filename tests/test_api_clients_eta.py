"""Honest progress: on runs whose steps take known times, the ETA that GET /{id} gives matches the time the smol
really took to finish. An in-process worker with providers that take a known time; the real API and Postgres."""

import asyncio
import statistics
import time

import httpx
import pytest

from tests.support import _stop
from tests.support_api_clients import Steady, start_logged_api, start_smol, steady_songs
from tests.workers import activities_with, worker_for

pytestmark = pytest.mark.slow
IMAGE, DESCRIBE, LYRICS, NSFW, SUBMIT, SONGS = 1.0, 0.5, 0.5, 0.3, 0.3, 2.5
TOLERANCE = 1.5  # seconds, on runs of about 6 s, on 2 cores busy with the rest of the test run


async def test_the_eta_matches_how_long_the_smol_really_takes(stack, pool, temporal, task_queue, tmp_path):
    api, url = start_logged_api(stack.env, tmp_path / "api.log", progress_cache_seconds=0)
    activities = activities_with(stack, pool, poll_interval=0.2)
    providers = activities.providers
    providers.image = Steady(providers.image.named("local"), {"generate": IMAGE})
    providers.describe = Steady(providers.describe.named("local"), {"describe": DESCRIBE})
    providers.lyrics = Steady(providers.lyrics.named("local"), {"write": LYRICS})
    providers.nsfw = Steady(providers.nsfw.named("local"), {"check": NSFW})
    providers.songs = Steady(steady_songs(activities.store, tmp_path / "songs", SONGS), {"submit": SUBMIT})
    address = "GETA" + task_queue[-8:].upper()
    headers = {"Authorization": f"Bearer {stack.token(address)}"}
    try:
        async with worker_for(temporal, task_queue, activities), httpx.AsyncClient(base_url=url, timeout=30) as http:
            # History: three runs with these providers (recorded in provider_calls as any run is).
            warm = [await start_smol(temporal, task_queue, address, prompt=f"a steady frog {i}") for i in range(3)]
            await asyncio.gather(*(temporal.get_workflow_handle(smol_id).result() for smol_id in warm))

            first, later, took = [], [], []
            for i in range(3):
                started = time.monotonic()
                smol_id = await start_smol(temporal, task_queue, address, prompt=f"a measured frog {i}")
                samples = []
                while True:
                    asked = time.monotonic()
                    body = (await http.get(f"/{smol_id}", headers=headers)).json()
                    if "d1" in body:
                        break
                    if "progress" in body:
                        samples.append((asked, body["progress"]))
                    await asyncio.sleep(0.1)
                took.append(asked - started)
                await temporal.get_workflow_handle(smol_id).result()  # its indexing ends before the next one starts
                errors = [progress["eta_seconds"] - (asked - at) for at, progress in samples]
                first.append(errors[0])
                later += errors[1:]
                percents = [progress["percent"] for _, progress in samples]
                assert percents == sorted(percents) and 0 <= percents[0] < 30 and percents[-1] > 70, percents
                assert {p["step"] for _, p in samples} >= {"image", "poll"}
    finally:
        _stop(api)
    print(f"\nETA on {len(took)} smols of {statistics.mean(took):.2f} s: at the start predicted - actual = "
          f"{', '.join(f'{e:+.2f}' for e in first)} s; over {len(later)} later samples mean |error| "
          f"{statistics.mean(abs(e) for e in later):.2f} s, worst {max(later, key=abs):+.2f} s")
    assert all(abs(error) <= TOLERANCE for error in first + later), (first, later)
