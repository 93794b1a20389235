"""Remote provider adapters against local fakes of their services: happy paths, failures, fallback chains."""

import io
import json

import httpx
import pytest
from PIL import Image

from activities.providers.chain import Chain
from activities.providers.local import LocalImage
from activities.providers.pixellab import PixellabImage
from activities.providers.registry import build_providers
from smol import repo
from smol.errors import ProviderError
from smol.settings import Settings
from tests.fakes import FakePixellab
from tests.workers import activities_with, record_into, start_smol, worker_for


def adapter(http, fake, key=FakePixellab.KEY) -> PixellabImage:
    return PixellabImage(http, key, f"{fake.url}/v1")


async def test_pixellab_sends_the_original_style_and_returns_the_png(provider_client, pixellab):
    png = await adapter(provider_client, pixellab).generate("a frog", 7)
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    sent = json.loads(pixellab.requests[0]["body"])
    assert sent["description"] == "a frog" and sent["image_size"] == {"width": 64, "height": 64}
    assert sent["negative_description"] == "blurry. dithering. photorealism." and sent["text_guidance_scale"] == 8
    assert (sent["outline"], sent["shading"], sent["detail"]) == ("selective outline", "basic shading", "medium detail")
    assert (sent["view"], sent["direction"]) == ("low top-down", "south")


@pytest.mark.parametrize("fault, retryable", [(500, True), (503, True), (429, True), ("malformed", True),
                                              ("hang", True), (422, False), (400, False)])  # fmt: skip
async def test_pixellab_failures_say_whether_to_retry(provider_client, pixellab, fault, retryable):
    pixellab.faults = [fault]
    with pytest.raises(ProviderError) as raised:
        await adapter(provider_client, pixellab).generate("a frog", 7)
    assert raised.value.retryable is retryable


async def test_a_wrong_key_is_final_and_never_shown(provider_client, pixellab):
    with pytest.raises(ProviderError) as raised:
        await adapter(provider_client, pixellab, key="sk-secret-wrong-key").generate("a frog", 7)
    assert not raised.value.retryable and "401" in str(raised.value)
    assert "sk-secret-wrong-key" not in str(raised.value)


async def test_chain_retries_then_falls_back(provider_client, pixellab):
    calls: list[str] = []
    chain = Chain([adapter(provider_client, pixellab), LocalImage()], attempts=2, pause=0.01)
    pixellab.faults = [500]
    _, used = await chain.call("generate", "a frog", 1, record=record_into(calls))
    assert used == "pixellab" and calls == ["pixellab", "pixellab"]

    calls.clear()
    pixellab.faults = [500, "hang"]
    png, used = await chain.call("generate", "a frog", 1, record=record_into(calls))
    assert used == "local" and calls == ["pixellab", "pixellab", "local"]
    assert Image.open(io.BytesIO(png)).size == (64, 64)

    calls.clear()
    _, used = await Chain([adapter(provider_client, pixellab, key="bad"), LocalImage()]).call(
        "generate", "a frog", 1, record=record_into(calls))  # fmt: skip
    assert used == "local" and calls == ["pixellab", "local"]  # a refusal is not retried


async def test_a_chain_that_only_fails_says_whether_it_may_work_later(provider_client, pixellab):
    pixellab.faults = [500, 500]
    with pytest.raises(ProviderError) as raised:
        await Chain([adapter(provider_client, pixellab)], pause=0.01).call("generate", "x", 1, record=record_into([]))
    assert raised.value.retryable and type(raised.value).__name__ == "ProvidersExhausted"
    with pytest.raises(ProviderError) as raised:
        await Chain([adapter(provider_client, pixellab, key="bad")]).call("generate", "x", 1, record=record_into([]))
    assert not raised.value.retryable and type(raised.value).__name__ == "ProvidersRefused"


async def test_a_smol_records_which_provider_made_its_cover(stack, pool, temporal, task_queue, pixellab):
    async with httpx.AsyncClient(timeout=2.0) as client:
        chain = Chain([adapter(client, pixellab, key="bad"), LocalImage()])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, image=chain)):
            refused_id, handle = await start_smol(temporal, task_queue, prompt="a cover from the fallback")
            await handle.result()
        chain = Chain([adapter(client, pixellab), LocalImage()])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, image=chain)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a cover from pixellab")
            await handle.result()
    assert (await repo.load_steps(pool, refused_id))["image"]["provider"] == "local"
    assert (await repo.load_steps(pool, smol_id))["image"]["provider"] == "pixellab"
    png = (stack.settings.object_root() / f"{smol_id}.png").read_bytes()
    assert Image.open(io.BytesIO(png)).getpixel((0, 0)) == (200, 30, 90)  # the fake's colour
    calls = await pool.fetch(
        "SELECT provider, ok FROM provider_calls WHERE smol_id = $1 AND step = 'image'", refused_id
    )
    assert [(c["provider"], c["ok"]) for c in calls] == [("pixellab", False), ("local", True)]


def test_settings_name_the_chains_and_unknown_or_keyless_providers_fail_at_start(tmp_path):
    built = build_providers(Settings(image_providers="pixellab, local", pixellab_api_key="k", data_dir=tmp_path), None)
    assert built.image.names == ["pixellab", "local"]
    with pytest.raises(ValueError, match="unknown image provider 'dalle'"):
        build_providers(Settings(image_providers="dalle,local", data_dir=tmp_path), None)
    with pytest.raises(ValueError, match="API key"):
        build_providers(Settings(image_providers="pixellab", data_dir=tmp_path), None)


async def test_keys_never_reach_the_history_the_status_or_the_provider_log(stack, pool, temporal, task_queue, pixellab):
    secret = "sk-never-show-this-key"
    async with httpx.AsyncClient(timeout=2.0) as client:
        chain = Chain([adapter(client, pixellab, key=secret), LocalImage()])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, image=chain)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a secret-keeping song")
            await handle.result()
            status = await handle.query("status")
    history = await handle.fetch_history()
    assert secret not in json.dumps(history.to_json_dict())
    assert secret not in json.dumps(status, default=str)
    errors = await pool.fetch("SELECT error FROM provider_calls WHERE smol_id = $1 AND error IS NOT NULL", smol_id)
    assert errors and all(secret not in row["error"] for row in errors)
    assert any(r["headers"].get("Authorization") == f"Bearer {secret}" for r in pixellab.requests)  # it was sent
