"""Provider calls for N smols when every remote service fails a share of its requests (HTTP 503).

Local fakes of Pixellab, Workers AI and the AI Song Generator service answer on 127.0.0.1 and fail `--failure-rate`
of requests at random; the chains are remote first, local last. Prints the calls per step and provider from
`provider_calls`, and the songs each fake made (to show nothing was paid twice).

    .venv/bin/python bench/provider_faults.py [--smols 20] [--failure-rate 0.3]
"""

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stack import bench_stack  # noqa: E402

from activities.pipeline import SmolActivities  # noqa: E402
from activities.providers import Providers, local  # noqa: E402
from activities.providers.aisonggenerator import AiSongGenerator  # noqa: E402
from activities.providers.chain import Chain  # noqa: E402
from activities.providers.cloudflare import WorkersAI  # noqa: E402
from activities.providers.local.music import encode_mp3, plan, render  # noqa: E402
from activities.providers.pixellab import PixellabImage  # noqa: E402
from smol.db import create_pool  # noqa: E402
from smol.ids import new_smol_id  # noqa: E402
from smol.store import open_store  # noqa: E402
from tests.fakes import FakePixellab, FakeSongService, FakeWorkersAI  # noqa: E402
from workflows.models import Payload, SmolInput  # noqa: E402
from workflows.smol import SmolWorkflow  # noqa: E402


async def run(args) -> None:
    arrangement = plan(["pop"], 1)
    audio = encode_mp3(render(arrangement, 2, 0, 1), title="t", artist="a", arrangement=arrangement, cover_png=None)
    fakes = {"pixellab": FakePixellab(args.failure_rate, 1), "cloudflare": FakeWorkersAI(args.failure_rate, 2),
             "songs": FakeSongService(audio, 0.5, args.failure_rate, 3)}  # fmt: skip
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
                songs=Chain([service, local.LocalSongs(store, settings.data_dir / "local-songs", 30, 0.5)]),
            )  # fmt: skip
            activities = SmolActivities(pool, store, providers, poll_interval=0.3)
            client = await Client.connect(settings.temporal_address)
            async with Worker(client, task_queue="faults", workflows=[SmolWorkflow], activities=activities.all()):
                handles = []
                for n in range(args.smols):
                    smol_id = new_smol_id()
                    handles.append(await client.start_workflow(
                        SmolWorkflow.run, SmolInput(smol_id, Payload("GFAULTS", f"fault run {n}: a lofi frog")),
                        id=smol_id, task_queue="faults"))  # fmt: skip
                results = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
        done = sum(not isinstance(r, BaseException) for r in results)
        conn = await asyncpg.connect(stack["database_url"])
        rows = await conn.fetch(
            "SELECT step, provider, count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS failed "
            "FROM provider_calls GROUP BY step, provider ORDER BY step, provider"
        )
        await conn.close()
        await pool.close()
        print(f"cores: {os.cpu_count()}, smols: {args.smols}, completed: {done}, failure rate of every fake: "
              f"{args.failure_rate:.0%}")  # fmt: skip
        print(f"  {'step':<12} {'provider':<16} {'ok':>5} {'failed':>7}")
        for row in rows:
            print(f"  {row['step']:<12} {row['provider']:<16} {row['ok']:>5} {row['failed']:>7}")
        song_fake = fakes["songs"]
        print(
            f"  requests seen by the fakes: pixellab {len(fakes['pixellab'].requests)}, "
            f"workers-ai {len(fakes['cloudflare'].requests)}, song service {len(song_fake.requests)}"
        )
        print(
            f"  songs the song service made: {song_fake.songs_created} for {len(song_fake.by_key)} accepted "
            f"submissions (2 per submission means nothing was paid twice)"
        )
    for fake in fakes.values():
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=20)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
