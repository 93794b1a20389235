"""The AI Song Generator adapter against a local fake of the service: lyrics, songs, downloads, and no double
charge when an answer is lost."""

import asyncio
import json

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.providers.aisonggenerator import AiSongGenerator
from activities.providers.chain import Chain
from activities.providers.local import LocalLyrics
from smol import repo
from smol.errors import ProviderError, SongIdTaken
from tests.fakes import FakeSongService
from tests.support import job
from tests.workers import activities_with, record_into, start_smol, worker_for
from workflows.smol import SmolWorkflow


@pytest.fixture
def songgen(audio):
    fake = FakeSongService(audio)
    yield fake
    fake.close()


def service(client, fake, source="aisonggenerator") -> AiSongGenerator:
    return AiSongGenerator(client, fake.url, FakeSongService.KEY, source)


async def test_lyrics_submit_poll_and_download(provider_client, songgen, audio):
    generator = service(provider_client, songgen)
    lyrics = await generator.write("rainy frogs", "", False, 1)
    assert lyrics.title and "[Verse]" in lyrics.lyrics and len(lyrics.style) == 2
    ids = await generator.submit(job())
    assert len(ids) == 2 and (await generator.poll(ids))[0].status in (1, 2)
    sent = json.loads(songgen.requests[-2]["body"])
    assert sent["prompt"] == "a pop song\n\nA bright picture." and sent["style"] == ["pop", "dreamy"]
    import asyncio

    await asyncio.sleep(0.6)
    assert [s.status for s in await generator.poll(ids)] == [4, 4]
    assert await generator.fetch_audio(ids[0]) == audio


async def test_long_prompts_go_without_the_description(provider_client, songgen):
    await service(provider_client, songgen).submit(job(prompt="x" * 800))
    assert json.loads(songgen.requests[-1]["body"])["prompt"] == "x" * 800


async def test_downloads_that_are_not_audio_are_refused(provider_client, songgen):
    songgen.ready_after = 0
    ids = await service(provider_client, songgen).submit(job())
    songgen.audio_type = "text/html"
    with pytest.raises(ProviderError) as raised:
        await service(provider_client, songgen).fetch_audio(ids[0])
    assert not raised.value.retryable and "content type" in str(raised.value)


async def test_a_lost_answer_does_not_pay_twice(provider_client, songgen):
    songgen.submit_delays = [2.0]  # the service accepts the job but the answer comes after our timeout
    chain = Chain([service(provider_client, songgen)], attempts=2, pause=0.01)
    calls = []
    ids, used = await chain.call("submit", job(), record=record_into(calls))
    assert calls == ["aisonggenerator", "aisonggenerator"] and songgen.songs_created == 2
    assert ids == list(songgen.by_key.values())[0]


async def test_songs_from_the_service_through_the_workflow(stack, pool, temporal, task_queue, songgen, audio):
    songgen.faults = []
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen), service(http, songgen, "diffrhythm")], pause=0.01)
        lyrics = Chain([service(http, songgen), LocalLyrics()])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs, lyrics=lyrics)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a served song")
            result = await handle.result()
    assert result.song_ids[0].startswith("aisonggenerator-") and songgen.songs_created == 2
    assert (stack.settings.object_root() / f"{result.song_ids[0]}.mp3").read_bytes() == audio
    steps = await repo.load_steps(pool, smol_id)
    assert steps["song_ids"]["provider"] == "aisonggenerator" and steps["lyrics"]["provider"] == "aisonggenerator"


async def test_a_failing_source_falls_back_to_the_next(stack, pool, temporal, task_queue, songgen):
    songgen.faults = [503, 503]  # both quick tries of the aisonggenerator source
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen), service(http, songgen, "diffrhythm")], pause=0.01)
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a fallback song")
            result = await handle.result()
    assert all(i.startswith("diffrhythm-") for i in result.song_ids)
    assert (await repo.load_steps(pool, smol_id))["song_ids"]["provider"] == "diffrhythm"


async def test_a_content_policy_refusal_ends_the_smol_and_says_so(stack, pool, temporal, task_queue, songgen):
    songgen.job_status = -1
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a refused song")
            with pytest.raises(WorkflowFailureError) as raised:
                await handle.result()
    assert raised.value.cause.type == "SongFailed" and "content policy" in str(raised.value.cause)
    assert songgen.songs_created == 2  # not resubmitted


async def test_songs_that_stop_making_progress_end_the_smol(stack, pool, temporal, task_queue, songgen):
    songgen.stall = True  # the jobs stay "generating" for ever
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, stall_seconds=2, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a stalled song")
            with pytest.raises(WorkflowFailureError) as raised:
                await handle.result()
    assert raised.value.cause.type == "SongStalled" and "no progress" in str(raised.value.cause)


async def test_slow_songs_that_keep_progressing_are_waited_for(stack, pool, temporal, task_queue, songgen):
    songgen.ready_after = 3.5  # longer than the stall limit, but the status moves from queued to generating
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, stall_seconds=2.5, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a slow song")
            assert len((await handle.result()).song_ids) == 2


def poll_attempts(history) -> list[int]:
    """The attempt number of each poll_songs activity that ran, from the workflow history."""
    scheduled = {
        event.event_id
        for event in history.events
        if event.activity_task_scheduled_event_attributes.activity_type.name == "poll_songs"
    }
    return [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
        and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


async def test_partial_audio_is_in_the_status_while_songs_stream(stack, pool, temporal, task_queue, songgen):
    songgen.ready_after = 4  # status 2 ("streaming", with a partial audio URL) from 2 s to 4 s
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            smol_id, handle = await start_smol(temporal, task_queue, prompt="a streaming song")
            streaming = []
            while not streaming:
                status = await handle.query(SmolWorkflow.status)
                streaming = [s for s in status.kv_do.get("songs", []) if s["status"] == 2 and s["audio"]]
                await asyncio.sleep(0.2)
            assert streaming[0]["audio"].startswith(f"{songgen.url}/audio/")
            await handle.result()
    rows = await repo.songs_of(pool, smol_id)
    assert [r["status"] for r in rows] == [4, 4] and all(r["object_key"] for r in rows)


async def test_short_intervals_poll_inside_one_heartbeating_activity(stack, pool, temporal, task_queue, songgen):
    songgen.ready_after = 3  # about ten polls at 0.3 s
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=songs)):
            _, handle = await start_smol(temporal, task_queue, prompt="a heartbeating poll")
            await handle.result()
    polled = len([r for r in songgen.requests if r["method"] == "GET" and "/api/songs" in r["path"]])
    attempts = poll_attempts(await handle.fetch_history())
    # one activity per change the workflow had to see (queued, generating, complete), not one per poll
    assert polled >= 8 and len(attempts) <= 4 and attempts == [1] * len(attempts)


async def test_long_intervals_poll_by_retrying_with_a_benign_error(stack, pool, temporal, task_queue, songgen):
    songgen.ready_after = 3
    async with httpx.AsyncClient(timeout=5.0) as http:
        songs = Chain([service(http, songgen)])
        activities = activities_with(stack, pool, songs=songs, poll_interval=0.5, heartbeat_poll_limit=0.1)
        async with worker_for(temporal, task_queue, activities):
            _, handle = await start_smol(temporal, task_queue, prompt="a retry-driven poll")
            await handle.result()
    attempts = poll_attempts(await handle.fetch_history())
    assert len(attempts) <= 4 and max(attempts) >= 3  # the waiting happened in retries, not in new activities


async def test_a_song_id_of_another_smol_is_refused_not_overwritten(pool):
    first, second = "a" * 64, "b" * 64
    await repo.save_song(pool, first, "shared-id-123", 0, "aisonggenerator", 4, "shared-id-123.mp3")
    with pytest.raises(SongIdTaken):
        await repo.save_song(pool, second, "shared-id-123", 0, "musicgen", 1)
    (row,) = await repo.songs_of(pool, first)
    assert (row["music_id"], row["status"], row["object_key"]) == ("shared-id-123", 4, "shared-id-123.mp3")
    assert await repo.songs_of(pool, second) == []
    await pool.execute("DELETE FROM smol_songs WHERE music_id = 'shared-id-123'")
