"""ElevenLabs music (synchronous: the audio is the response body) against a local fake of its compose endpoint."""

import json

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.providers.chain import Chain
from activities.providers.elevenlabs import ElevenLabsSongs
from smol import repo
from smol.errors import ProviderError
from smol.ids import song_key
from smol.store import FileStore
from tests.fakes import FakeElevenLabs
from tests.support import job
from tests.workers import activities_with, start_smol, worker_for


def composer(client, fake, store, key=FakeElevenLabs.KEY) -> ElevenLabsSongs:
    return ElevenLabsSongs(client, key, store, fake.url, seconds=30)


async def test_songs_are_composed_one_per_poll_and_never_twice(provider_client, elevenlabs, audio, tmp_path):
    store = FileStore(tmp_path)
    songs = composer(provider_client, elevenlabs, store)
    ids = await songs.submit(job())
    assert elevenlabs.composed == 0 and ids == await songs.submit(job())  # submitting costs nothing, same ids
    assert [s.status for s in await songs.poll(ids)] == [4, 2]
    assert [s.status for s in await songs.poll(ids)] == [4, 4]
    assert [s.status for s in await songs.poll(ids)] == [4, 4] and elevenlabs.composed == 2
    assert await songs.fetch_audio(ids[1]) == audio == await store.get(song_key(ids[0]))
    request = elevenlabs.requests[0]
    sent = json.loads(request["body"])
    assert "output_format=mp3_44100_128" in request["path"] and request["headers"]["xi-api-key"]
    assert sent["music_length_ms"] == 30_000 and sent["model_id"] == "music_v1" and not sent["force_instrumental"]
    assert "a pop song" in sent["prompt"] and "la" in sent["prompt"]


async def test_the_creators_duration_is_sent_in_milliseconds(provider_client, elevenlabs, tmp_path):
    chosen = job()
    chosen.params = {"duration": 12}
    songs = composer(provider_client, elevenlabs, FileStore(tmp_path))
    await songs.poll(await songs.submit(chosen))
    assert json.loads(elevenlabs.requests[0]["body"])["music_length_ms"] == 12_000


async def test_a_refused_prompt_is_a_content_policy_failure(provider_client, elevenlabs, tmp_path):
    songs = composer(provider_client, elevenlabs, FileStore(tmp_path))
    assert [s.status for s in await songs.poll(await songs.submit(job(prompt="a forbidden song")))] == [-1, 2]


async def test_failures_are_classified_and_keep_the_key_secret(provider_client, elevenlabs, tmp_path):
    songs = composer(provider_client, elevenlabs, FileStore(tmp_path))
    ids = await songs.submit(job())
    elevenlabs.faults = [503]
    with pytest.raises(ProviderError) as raised:
        await songs.poll(ids)
    assert raised.value.retryable
    elevenlabs.faults = ["hang"]
    with pytest.raises(ProviderError) as raised:
        await songs.poll(ids)
    assert raised.value.retryable and "in time" in str(raised.value)
    with pytest.raises(ProviderError) as raised:
        await composer(provider_client, elevenlabs, FileStore(tmp_path), key="wrong-key").poll(ids)
    assert not raised.value.retryable and "wrong-key" not in str(raised.value)
    elevenlabs.audio_type = "text/html"
    with pytest.raises(ProviderError) as raised:
        await songs.poll(ids)
    assert not raised.value.retryable and "content type" in str(raised.value)


async def test_a_smol_made_with_elevenlabs(stack, pool, temporal, task_queue, elevenlabs, audio):
    elevenlabs.faults = [500]  # the first compose fails; the poll activity retries it
    async with httpx.AsyncClient(timeout=5.0) as http:
        activities = activities_with(stack, pool)
        activities.providers.songs = Chain([composer(http, elevenlabs, activities.store)])
        async with worker_for(temporal, task_queue, activities):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="an elevenlabs song")
            result = await handle.result()
    assert elevenlabs.composed == 2
    rows = await repo.songs_of(pool, smol_id)
    assert [r["provider"] for r in rows] == ["elevenlabs"] * 2 and all(r["object_key"] for r in rows)
    assert await activities.store.get(song_key(result.song_ids[0])) == audio
    assert not await activities.store.exists(f"provider-jobs/elevenlabs/{result.song_ids[0]}.json")


async def test_a_refused_elevenlabs_song_ends_the_smol(stack, pool, temporal, task_queue, elevenlabs):
    async with httpx.AsyncClient(timeout=5.0) as http:
        activities = activities_with(stack, pool)
        activities.providers.songs = Chain([composer(http, elevenlabs, activities.store)])
        async with worker_for(temporal, task_queue, activities):
            _, handle = await start_smol(temporal, task_queue, prompt="a forbidden elevenlabs song")
            with pytest.raises(WorkflowFailureError) as raised:
                await handle.result()
    assert raised.value.cause.type == "SongFailed" and "content policy" in str(raised.value.cause)
