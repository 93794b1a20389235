"""What N smols cost when every remote service fails a share of its requests (HTTP 503) and loses the answer of
another share (the work done — and charged — but the connection dropped before the answer).

Local fakes of Pixellab, Workers AI, the AI Song Generator service (lyrics) and ElevenLabs (songs, which has no
idempotency key) answer on 127.0.0.1; the chains are remote first, local last. Prints, per provider, the work each
fake did (what would be billed) against the work the finished smols kept, and the paid calls recorded.

    .venv/bin/python bench/provider_faults.py [--smols 20] [--failure-rate 0.3] [--lost-rate 0.1]
"""

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stack import bench_stack  # noqa: E402

from activities.failures import smol_worker
from activities.pipeline import SmolActivities  # noqa: E402
from activities.providers import local  # noqa: E402
from activities.providers.aisonggenerator import AiSongGenerator  # noqa: E402
from activities.providers.chain import Chain  # noqa: E402
from activities.providers.cloudflare import WorkersAI  # noqa: E402
from activities.providers.elevenlabs import ElevenLabsSongs  # noqa: E402
from activities.providers.interfaces import Providers
from activities.providers.local.music import encode_mp3, plan, render  # noqa: E402
from activities.providers.pixellab import PixellabImage  # noqa: E402
from contracts.smol import Payload, SmolInput  # noqa: E402
from smol.db import create_pool  # noqa: E402
from smol.ids import new_smol_id  # noqa: E402
from smol.store import open_store  # noqa: E402
from smol.temporal import connect  # noqa: E402
from tests.fakes import FakeElevenLabs, FakePixellab, FakeSongService, FakeWorkersAI  # noqa: E402
from workflows.smol import SmolWorkflow  # noqa: E402


async def run(args) -> None:
    arrangement = plan(["pop"], 1)
    audio = encode_mp3(render(arrangement, 2, 0, 1), title="t", artist="a", arrangement=arrangement, cover_png=None)
    fakes = {"pixellab": FakePixellab(args.failure_rate, 1), "cloudflare": FakeWorkersAI(args.failure_rate, 2),
             "songs": FakeSongService(audio, 0.5, args.failure_rate, 3),
             "elevenlabs": FakeElevenLabs(audio, 0.1, args.failure_rate, 4)}  # fmt: skip
    for fake in fakes.values():
        fake.lost_rate = args.lost_rate
    with bench_stack(worker=False) as stack:
        settings = stack["settings"].model_copy(update={"database_url": stack["database_url"]})
        pool = await create_pool(settings)
        store = open_store(settings)
        async with httpx.AsyncClient(timeout=5) as http:
            ai = WorkersAI(http, FakeWorkersAI.ACCOUNT, FakeWorkersAI.TOKEN, f"{fakes['cloudflare'].url}/client/v4")
            service = AiSongGenerator(http, fakes["songs"].url, FakeSongService.KEY, "aisonggenerator")
            providers = Providers(
                image=Chain([PixellabImage(http, FakePixellab.KEY, f"{fakes['pixellab'].url}/v1"), local.LocalImage()]),
                describe=Chain([ai, local.LocalDescribe()]),
                lyrics=Chain([service, ai, local.LocalLyrics()]),
                nsfw=Chain([ai, local.LocalNsfw()]),
                songs=Chain([ElevenLabsSongs(http, FakeElevenLabs.KEY, store, fakes["elevenlabs"].url, seconds=30),
                             local.LocalSongs(store, settings.data_dir / "local-songs", 30, 0.5)]),
            )  # fmt: skip
            activities = SmolActivities(pool, store, providers, poll_interval=0.3)
            client = await connect(settings)
            async with smol_worker(client, task_queue="faults", workflows=[SmolWorkflow], activities=activities.all()):
                handles = []
                for n in range(args.smols):
                    smol_id = new_smol_id()
                    handles.append(await client.start_workflow(
                        SmolWorkflow.run, SmolInput(smol_id, Payload("GFAULTS", f"fault run {n}: a lofi frog")),
                        id=smol_id, task_queue="faults"))  # fmt: skip
                results = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
        done = sum(not isinstance(r, BaseException) for r in results)
        failures = [getattr(getattr(r, "cause", None), "type", type(r).__name__) for r in results
                    if isinstance(r, BaseException)]  # fmt: skip
        conn = await asyncpg.connect(stack["database_url"])
        kept = {row["provider"]: row["n"] for row in await conn.fetch(
            "SELECT data->>'provider' AS provider, count(*) AS n FROM smol_steps st JOIN smols s ON s.id = st.smol_id "
            "WHERE step IN ('image', 'description', 'lyrics', 'nsfw') GROUP BY 1")}  # fmt: skip
        kept_songs = await conn.fetchval(
            "SELECT count(*) FROM smol_songs so JOIN smols s ON s.id = so.smol_id WHERE so.provider = 'elevenlabs'")
        has_units = await conn.fetchval("SELECT true FROM information_schema.columns "
                                        "WHERE table_name = 'provider_calls' AND column_name = 'units'")  # fmt: skip
        counted = "sum(units)" if has_units else "count(*) FILTER (WHERE ok)"  # before: only answered calls
        paid = {row["provider"]: row["n"] for row in await conn.fetch(
            f"SELECT provider, {counted} AS n FROM provider_calls GROUP BY 1")}
        await conn.close()
        await pool.close()
        print(f"cores: {os.cpu_count()}, smols: {args.smols}, completed: {done}, every fake: "
              f"{args.failure_rate:.0%} refused (503), {args.lost_rate:.0%} answers lost after the work"
              + (f"; failed: {', '.join(failures)}" if failures else ""))  # fmt: skip
        done_by = {
            "pixellab": fakes["pixellab"].done("POST", "/v1/generate-image-pixflux"),
            "cloudflare": fakes["cloudflare"].done("POST", "/client"),
            "aisonggenerator": fakes["songs"].done("POST", "/api/lyrics"),
            "elevenlabs (songs)": fakes["elevenlabs"].composed,
        }
        kept_by = {"pixellab": kept.get("pixellab", 0), "cloudflare": kept.get("cloudflare", 0),
                   "aisonggenerator": kept.get("aisonggenerator", 0), "elevenlabs (songs)": kept_songs}  # fmt: skip
        recorded = {"pixellab": paid.get("pixellab", 0), "cloudflare": paid.get("cloudflare", 0),
                    "aisonggenerator": paid.get("aisonggenerator", 0), "elevenlabs (songs)": paid.get("elevenlabs", 0)}
        label = "recorded paid" if has_units else "recorded ok"
        print(f"  {'provider':<20} {'work done (billed)':>18} {'kept':>6} {'billed/kept':>12} {label:>14}")
        for name, work in done_by.items():
            ratio = work / kept_by[name] if kept_by[name] else float("nan")
            print(f"  {name:<20} {work:>18} {kept_by[name]:>6} {ratio:>12.2f} {recorded[name]:>14}")
    for fake in fakes.values():
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=20)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    parser.add_argument("--lost-rate", type=float, default=0.1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
