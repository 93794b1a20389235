"""The Cloudflare Workers AI adapters (describe, safety, lyrics) against a local fake of its REST API."""

import json

import httpx
import pytest

from activities.providers.chain import Chain
from activities.providers.cloudflare import GUARD_MODEL, LYRICS_MODEL, WorkersAI
from activities.providers.local import LocalNsfw
from smol import repo
from smol.errors import ProviderError
from tests.fakes import FakeWorkersAI
from tests.workers import activities_with, start_smol, worker_for


@pytest.fixture
def cloudflare():
    fake = FakeWorkersAI()
    yield fake
    fake.close()


def workers_ai(client, fake, token=FakeWorkersAI.TOKEN) -> WorkersAI:
    return WorkersAI(client, FakeWorkersAI.ACCOUNT, token, f"{fake.url}/client/v4")


async def test_describe_sends_the_image_bytes(provider_client, cloudflare):
    text = await workers_ai(provider_client, cloudflare).describe("frogs", b"\x89PNG fake")
    assert "9 bytes" in text
    sent = json.loads(cloudflare.requests[0]["body"])
    assert cloudflare.requests[0]["path"].endswith("@cf/llava-hf/llava-1.5-7b-hf") and sent["image"][:4] == [
        137,
        80,
        78,
        71,
    ]


async def test_safety_and_lyrics_answer_json(provider_client, cloudflare):
    ai = workers_ai(provider_client, cloudflare)
    assert (await ai.check("a happy frog")).safe
    verdict = await ai.check("a murder ballad")
    assert not verdict.safe and verdict.categories == ["S1"]
    lyrics = await ai.write("clouds", "grey", False, 1)
    assert lyrics.title == "Cloud Song" and lyrics.style == ["ambient", "chill"]
    assert (await ai.write("clouds", "grey", True, 1)).lyrics == ""
    cloudflare.answers[GUARD_MODEL] = json.dumps({"safe": True, "categories": []})  # JSON as a string also works
    assert (await ai.check("x")).safe


@pytest.mark.parametrize("answer", ["I think it is safe", {"verdict": "safe"}, {"title": "no lyrics"}])
async def test_answers_without_the_json_asked_for_are_retryable_errors(provider_client, cloudflare, answer):
    cloudflare.answers = {GUARD_MODEL: answer, LYRICS_MODEL: answer}
    ai = workers_ai(provider_client, cloudflare)
    for call in (ai.check("x"), ai.write("x", "", False, 1)):
        with pytest.raises(ProviderError) as raised:
            await call
        assert raised.value.retryable


async def test_a_bad_token_is_final_and_hidden(provider_client, cloudflare):
    with pytest.raises(ProviderError) as raised:
        await workers_ai(provider_client, cloudflare, token="cf-secret-token").check("x")
    assert not raised.value.retryable and "cf-secret-token" not in str(raised.value)


async def test_the_pipeline_uses_workers_ai_and_falls_back_when_it_fails(stack, pool, temporal, task_queue, cloudflare):
    async with httpx.AsyncClient(timeout=5.0) as http:
        ai = workers_ai(http, cloudflare)
        chains = {"describe": Chain([ai]), "nsfw": Chain([ai, LocalNsfw()], pause=0.01), "lyrics": Chain([ai])}
        cloudflare.faults = [None, None, 500, 500]  # describe and lyrics pass; both tries of the safety check fail
        async with worker_for(temporal, task_queue, activities_with(stack, pool, **chains)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a cloudy song")
            await handle.result()
    steps = await repo.load_steps(pool, smol_id)
    assert steps["description"]["provider"] == "cloudflare" and steps["lyrics"]["provider"] == "cloudflare"
    assert steps["lyrics"]["value"]["title"] == "Cloud Song" and steps["nsfw"]["provider"] == "local"
