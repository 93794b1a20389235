"""Replicate song predictions (musicgen, riffusion) against a local fake of the predictions API."""

import json

import pytest
from temporalio.client import WorkflowFailureError

from activities.providers.chain import Chain
from activities.providers.replicate import ReplicateSongs
from smol import repo
from smol.errors import ProviderError
from tests.fakes import FakeReplicate
from tests.support import job
from tests.workers import activities_with, start_smol, worker_for


def musicgen(client, fake, token=FakeReplicate.TOKEN, model="musicgen") -> ReplicateSongs:
    return ReplicateSongs(client, token, "v123", model, f"{fake.url}/v1", seconds=30)


async def test_musicgen_sends_the_model_inputs_and_the_creators_parameters(provider_client, replicate):
    ids = await musicgen(provider_client, replicate).submit(job())
    assert len(ids) == 2 and len(replicate.predictions) == 2
    sent = [json.loads(r["body"]) for r in replicate.requests if r["method"] == "POST"]
    assert sent[0]["version"] == "v123" and sent[0]["input"]["duration"] == 30
    assert sent[0]["input"]["output_format"] == "mp3" and sent[0]["input"]["seed"] != sent[1]["input"]["seed"]
    chosen = job()
    chosen.params = {"duration": 12, "temperature": 0.7, "top_k": 200}
    await musicgen(provider_client, replicate).submit(chosen)
    last = json.loads(replicate.requests[-1]["body"])["input"]
    assert (last["duration"], last["temperature"], last["top_k"]) == (12, 0.7, 200)


async def test_riffusion_uses_its_own_inputs(provider_client, replicate):
    await musicgen(provider_client, replicate, model="riffusion").submit(job())
    assert "prompt_a" in json.loads(replicate.requests[1]["body"])["input"]  # after the look for an earlier one


async def test_a_bad_token_is_final_and_hidden(provider_client, replicate):
    with pytest.raises(ProviderError) as raised:
        await musicgen(provider_client, replicate, token="r8-secret").submit(job())
    assert not raised.value.retryable and "r8-secret" not in str(raised.value)


async def test_songs_from_musicgen_through_the_workflow(stack, pool, temporal, task_queue, replicate, audio):
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as client:
        songs = Chain([musicgen(client, replicate)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a musicgen song")
            result = await handle.result()
    assert (stack.settings.object_root() / f"{result.song_ids[1]}.mp3").read_bytes() == audio
    assert (await repo.load_steps(pool, smol_id))["song_ids"]["provider"] == "musicgen"


async def test_an_nsfw_refusal_is_a_content_policy_failure(stack, pool, temporal, task_queue, replicate):
    import httpx

    replicate.fail_with = "NSFW content detected in the output"
    async with httpx.AsyncClient(timeout=5.0) as client:
        songs = Chain([musicgen(client, replicate)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a refused musicgen song")
            with pytest.raises(WorkflowFailureError) as raised:
                await handle.result()
    assert "content policy" in str(raised.value.cause) and len(replicate.predictions) == 2


async def test_a_create_whose_answer_was_lost_is_found_again(provider_client, replicate):
    replicate.create_delays = [2.0]  # the first prediction is made, its answer comes after the client gave up
    songs = musicgen(provider_client, replicate)
    with pytest.raises(ProviderError):
        await songs.submit(job())
    ids = await songs.submit(job())
    assert len(replicate.predictions) == 2 and len(set(ids)) == 2  # not 3: the first one was found again
    failed = job(prompt="a song that will fail")
    replicate.fail_with = "CUDA out of memory"
    replicate.ready_after = 0
    first = await songs.submit(failed)
    assert [s.status for s in await songs.poll(first)] == [-3, -3]
    failed.submission = 1  # a resubmission after failure gets new predictions
    assert set(await songs.submit(failed)).isdisjoint(first)
