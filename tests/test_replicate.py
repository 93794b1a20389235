"""Replicate song predictions (musicgen, riffusion) against a local fake of the predictions API."""

import json

import pytest
from temporalio.client import WorkflowFailureError

from activities.providers import ProviderError
from activities.providers.chain import Chain
from activities.providers.replicate import ReplicateSongs
from smol import repo
from tests.fakes import FakeReplicate
from tests.test_song_service import job
from tests.workers import activities_with, start_smol, worker_for


@pytest.fixture
def replicate(audio):
    fake = FakeReplicate(audio)
    yield fake
    fake.close()


def musicgen(client, fake, token=FakeReplicate.TOKEN, model="musicgen") -> ReplicateSongs:
    return ReplicateSongs(client, token, "v123", model, f"{fake.url}/v1", seconds=30)


async def test_musicgen_sends_the_model_inputs_and_the_creators_parameters(provider_client, replicate):
    ids = await musicgen(provider_client, replicate).submit(job())
    assert len(ids) == 2 and len(replicate.predictions) == 2
    sent = [json.loads(r["body"]) for r in replicate.requests]
    assert sent[0]["version"] == "v123" and sent[0]["input"]["duration"] == 30
    assert sent[0]["input"]["output_format"] == "mp3" and sent[0]["input"]["seed"] != sent[1]["input"]["seed"]
    chosen = job()
    chosen.params = {"duration": 12, "temperature": 0.7, "top_k": 200}
    await musicgen(provider_client, replicate).submit(chosen)
    last = json.loads(replicate.requests[-1]["body"])["input"]
    assert (last["duration"], last["temperature"], last["top_k"]) == (12, 0.7, 200)


async def test_riffusion_uses_its_own_inputs(provider_client, replicate):
    await musicgen(provider_client, replicate, model="riffusion").submit(job())
    assert "prompt_a" in json.loads(replicate.requests[0]["body"])["input"]


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
