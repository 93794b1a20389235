"""What a smol can cost: work a provider already did is found again where it can be, a paid call whose answer was
lost counts as paid, and past SMOL_MAX_PAID_CALLS_PER_STEP a step fails for good with a clear reason.

The providers are local fakes of Pixellab, ElevenLabs and Replicate that do the work and then drop the connection
("lost" answers), as a provider behind a flaky network does."""

import json

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.providers.chain import Chain
from activities.providers.elevenlabs import ElevenLabsSongs
from activities.providers.local import LocalImage
from activities.providers.pixellab import PixellabImage
from activities.providers.replicate import ReplicateSongs
from smol import repo
from smol.errors import ProviderError
from tests.fakes import FakeElevenLabs, FakePixellab, FakeReplicate
from tests.support import job
from tests.workers import activities_with, start_smol, worker_for

IMAGE_PATH = "/v1/generate-image-pixflux"


def pixellab_chain(client, fake, *fallbacks) -> Chain:
    return Chain([PixellabImage(client, FakePixellab.KEY, f"{fake.url}/v1"), *fallbacks], pause=0.05)


async def _failure(handle) -> Exception:
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    return raised.value.cause


async def test_lost_answers_stop_at_the_cap_with_a_clear_reason(stack, pool, temporal, task_queue, pixellab):
    pixellab.lost_rate = 1.0  # every image is drawn (and charged), no answer ever arrives
    async with httpx.AsyncClient(timeout=2.0) as client:
        activities = activities_with(stack, pool, image=pixellab_chain(client, pixellab))
        async with worker_for(temporal, task_queue, activities):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a frog nobody hears back about")
            cause = await _failure(handle)
    assert cause.type == "PaidCallLimit" and "SMOL_MAX_PAID_CALLS_PER_STEP" in cause.message
    assert pixellab.done("POST", IMAGE_PATH) == 3  # the cap: not one image more was paid for
    assert await repo.paid_calls(pool, smol_id) == {"pixellab": 3}


async def test_past_the_cap_a_free_fallback_still_finishes_the_smol(stack, pool, temporal, task_queue, pixellab):
    pixellab.lost_rate = 1.0
    async with httpx.AsyncClient(timeout=2.0) as client:
        activities = activities_with(stack, pool, image=pixellab_chain(client, pixellab, LocalImage()))
        async with worker_for(temporal, task_queue, activities):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a frog drawn at home")
            await handle.result()
    assert pixellab.done("POST", IMAGE_PATH) == 2  # the chain's two quick tries, then the local painter
    assert (await repo.load_steps(pool, smol_id))["image"]["provider"] == "local"


async def test_refusals_are_not_paid_and_a_lost_answer_is(stack, pool, temporal, http, task_queue, pixellab):
    pixellab.faults = [503, "lost", 503]
    async with httpx.AsyncClient(timeout=2.0) as client:
        activities = activities_with(stack, pool, image=pixellab_chain(client, pixellab))
        async with worker_for(temporal, task_queue, activities):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a frog paid for twice")
            await handle.result()
    rows = await pool.fetch("SELECT ok, units FROM provider_calls WHERE smol_id = $1 AND step = 'image' ORDER BY id",
                            smol_id)  # fmt: skip
    assert [(r["ok"], r["units"]) for r in rows] == [(False, 0), (False, 1), (False, 0), (True, 1)]
    assert (await repo.paid_calls(pool, smol_id))["pixellab"] == 2 == pixellab.done("POST", IMAGE_PATH)
    owner = (await http.get(f"/{smol_id}", headers=stack.auth("GFAIL"))).json()
    assert owner["paid_calls"] == {"pixellab": 2}  # the local providers of the other steps cost nothing
    assert "paid_calls" not in (await http.get(f"/{smol_id}", headers=stack.auth("GOTHER"))).json()


async def test_elevenlabs_lost_compositions_stay_within_the_cap(stack, pool, temporal, task_queue, elevenlabs):
    elevenlabs.faults = ["lost"]  # the first song is composed, its audio never arrives
    async with httpx.AsyncClient(timeout=5.0) as client:
        store = activities_with(stack, pool).store
        songs = Chain([ElevenLabsSongs(client, FakeElevenLabs.KEY, store, elevenlabs.url, seconds=30)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="an elevenlabs song, once lost")
            result = await handle.result()
    assert len(set(result.song_ids)) == 2
    assert elevenlabs.composed == 3 and await repo.paid_calls(pool, smol_id) == {"elevenlabs": 3}


async def test_riffusion_variants_are_two_distinct_songs(stack, pool, temporal, task_queue, replicate):
    async with httpx.AsyncClient(timeout=5.0) as client:
        songs = Chain([ReplicateSongs(client, FakeReplicate.TOKEN, "riff1", "riffusion", f"{replicate.url}/v1")])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a riffusion song")
            result = await handle.result()
    assert len(set(result.song_ids)) == 2 and len(replicate.predictions) == 2
    inputs = [entry["input"] for entry in replicate.predictions.values()]
    assert inputs[0] != inputs[1] and inputs[0]["prompt_a"] == inputs[1]["prompt_a"]


async def test_a_lost_create_is_found_pages_back_and_nobody_elses_is_taken(provider_client, replicate):
    songs = ReplicateSongs(provider_client, FakeReplicate.TOKEN, "riff1", "riffusion", f"{replicate.url}/v1")
    replicate.page_size = 2
    since = "2020-01-01T00:00:00+00:00"
    mine = job(prompt="my riff", smol_id="a" * 64)
    mine.since = since
    replicate.create_delays = [2.0]  # variant 0 is made; its answer comes after the client gave up
    with pytest.raises(ProviderError) as lost:
        await songs.submit(mine)
    assert lost.value.lost
    for n in range(5):  # other smols' predictions push it back to the third page
        await songs.submit(job(prompt=f"someone else's riff {n}"))
    before = len(replicate.predictions)
    ids = await songs.submit(mine)
    assert len(replicate.predictions) == before + 1  # variant 0 found again on an older page; only variant 1 made
    lists = [r["path"] for r in replicate.requests if r["method"] == "GET" and "predictions" in r["path"]]
    assert any("cursor=" in path for path in lists)

    async def taken_by_another(variant, found):
        return set(found)  # as if another smol had recorded every match

    again = await songs.submit(mine, taken=taken_by_another)
    assert set(again).isdisjoint(ids)  # never adopted: new predictions instead


async def test_a_provider_answering_one_id_twice_fails_fast(stack, pool, temporal, task_queue):
    class OneSong:
        name = "echo"

        async def submit(self, job, taken=None):
            return ["same-song-id", "same-song-id"]

        async def poll(self, song_ids):
            raise AssertionError("never polled")

    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=OneSong())):
        _, handle = await start_smol(temporal, task_queue, prompt="an echo")
        cause = await _failure(handle)
    assert cause.type == "DuplicateSongId" and "same-song-id" in cause.message


def test_the_fake_loses_answers_after_doing_the_work(pixellab):
    pixellab.faults = ["lost"]
    body = {"description": "x", "image_size": {"width": 64, "height": 64}}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{pixellab.url}{IMAGE_PATH}", json=body, headers={"Authorization": f"Bearer {FakePixellab.KEY}"})
    assert pixellab.done("POST", IMAGE_PATH) == 1
    assert json.loads(pixellab.requests[0]["body"])["description"] == "x"
