"""The side effects of SmolWorkflow: every AI call and every write, one activity each.

Each activity saves its result (Postgres row or object key) before returning, so a retry run of the same smol
can start from it; each provider call is recorded in `provider_calls` (what a smol cost, and proof that a
finished step was not paid for twice).
"""

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from temporalio import activity

from activities.attempts import beat, durable, heartbeating
from activities.indexing import IndexActivities
from activities.providers.billing import Meter, metered
from activities.providers.chain import as_chain
from activities.providers.interfaces import Providers, SongJob
from contracts.smol import (
    ArchiveSongInput,
    ArchiveSongResult,
    CheckNsfwInput,
    CheckNsfwResult,
    DeliverWebhookInput,
    DeliverWebhookResult,
    DescribeImageInput,
    DescribeImageResult,
    DiscardSmolInput,
    DiscardSmolResult,
    GenerateImageInput,
    GenerateImageResult,
    GenerateLyricsInput,
    GenerateLyricsResult,
    LoadStepsInput,
    LoadStepsResult,
    PollSongsInput,
    PollSongsResult,
    SavePayloadInput,
    SavePayloadResult,
    StoreResultsInput,
    StoreResultsResult,
    SubmitSongsInput,
    SubmitSongsResult,
)  # fmt: skip
from contracts.steps import SongStatus, Step
from smol import repo, steps
from smol.errors import (
    DuplicateSongId,
    IncompleteLyrics,
    InvalidInput,
    PaidCallLimit,
    ProviderError,
    ServiceUnavailable,
    SongsNotReady,
    SongStalled,
    WebhookRefused,
    WebhookRetry,
    WebhookUnreachable,
)
from smol.ids import image_key, song_key
from smol.outages import is_outage
from smol.store import ObjectStore
from smol.validation import check_playlist, check_prompt
from smol.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, Unresolvable, deliver, sign
from workflows.policies import POLL_INSIDE_UP_TO, WRITE_MARGIN, WRITE_THROUGH_OUTAGE


async def outlasting_outages(write):
    """Run a database write, retrying through an outage for as long as the attempt lasts: it follows a paid provider
    call whose result would otherwise be lost with the failed attempt (and paid for again by the retry)."""
    info = activity.info()
    deadline = time.monotonic() + WRITE_THROUGH_OUTAGE
    if info.start_to_close_timeout:
        elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
        deadline = time.monotonic() + info.start_to_close_timeout.total_seconds() - elapsed - WRITE_MARGIN
    delay = 0.5
    while True:
        try:
            return await write()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + delay > deadline:
                raise
            beat()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class SmolActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        providers: Providers,
        poll_interval: float = 2.0,
        poll_window: float = 30.0,
        heartbeat_poll_limit: float = POLL_INSIDE_UP_TO,
        song_stall_seconds: float = 600.0,
        webhook_secret: str = "",
        webhooks_allow_private: bool = False,
        max_paid_calls: int = 3,
    ):
        self.pool = pool
        self.store = store
        self.providers = providers
        self.poll_interval = poll_interval
        self.poll_window = poll_window
        self.heartbeat_poll_limit = heartbeat_poll_limit
        self.song_stall_seconds = song_stall_seconds
        self.webhook_secret = webhook_secret
        self.webhooks_allow_private = webhooks_allow_private
        self.max_paid_calls = max_paid_calls

    async def _ask(self, chain, method: str, *args, smol_id: str, step: str, **kwargs):
        """(result, provider name) from the step's provider chain; a total failure becomes a Temporal error that
        keeps its retryability. Heartbeats meanwhile, so a worker that dies mid-call is noticed in seconds."""
        async with heartbeating():
            return await as_chain(chain).call(method, *args, **kwargs,
                                              record=lambda name: self._recorded(smol_id, step, name))  # fmt: skip

    @asynccontextmanager
    async def _recorded(self, smol_id: str, step: str, provider: str):
        """Record one provider call: in `provider_calls` before it is made (so a worker that dies mid-call leaves it
        counted) and with its outcome and billable requests after, in the metrics and the log. A billable request
        past the run's cap for this step is refused before it is sent (PaidCallLimit)."""
        run_id = activity.info().workflow_run_id
        call_id = await repo.start_provider_call(self.pool, smol_id, step, provider, run_id)

        async def guard(units_in_this_call: int) -> None:
            spent = await repo.units_spent(self.pool, smol_id, step, run_id, but=call_id) + units_in_this_call
            if spent >= self.max_paid_calls:
                message = f"{spent} paid requests made for the {step} step of this run; no more"
                raise PaidCallLimit(f"{message} (SMOL_MAX_PAID_CALLS_PER_STEP)")

        started = time.monotonic()
        error = None
        meter = Meter(guard)
        try:
            async with metered(meter):
                yield
        except ProviderError as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            elapsed = timedelta(seconds=time.monotonic() - started)
            metrics = activity.metric_meter().with_additional_attributes({"step": step, "provider": provider})
            metrics.create_histogram_timedelta("smol_provider_call_duration", unit="ms").record(elapsed)
            if error is not None:
                metrics.create_counter("smol_provider_errors").add(1)
            milliseconds = elapsed // timedelta(milliseconds=1)
            activity.logger.info("%s call to %s took %d ms, %d billable%s", step, provider, milliseconds, meter.units,
                                 f", and failed: {error}" if error else "")  # fmt: skip
            await outlasting_outages(lambda: repo.finish_provider_call(self.pool, call_id, milliseconds, error is None,
                                                                       error, meter.units))  # fmt: skip

    @activity.defn
    @durable
    async def load_steps(self, data: LoadStepsInput) -> LoadStepsResult:
        saved = await steps.load(self.pool, data.smol_id)
        songs = await repo.songs_of(self.pool, data.smol_id)
        if steps.failed_songs(songs) & set(saved.song_ids or []):  # a failed song is made again, under new ids
            saved.song_ids, saved.song_provider, saved.song_submission = None, None, saved.song_submission + 1
        saved.songs = [song for song in steps.songs_from(songs) if song.audio]
        return saved

    @activity.defn
    @durable
    async def save_payload(self, data: SavePayloadInput) -> SavePayloadResult:
        payload = data.payload
        if not payload.address:
            raise InvalidInput("address is required")
        check_prompt(payload.prompt, payload.instrumental)
        payload.playlist = check_playlist(payload.playlist)
        await steps.save_payload(self.pool, data.smol_id, payload)
        return SavePayloadResult(payload=payload)

    @activity.defn
    @durable
    async def generate_image(self, data: GenerateImageInput) -> GenerateImageResult:
        key = image_key(data.smol_id)
        if await self.store.exists(key):  # drawn (and paid for) by an attempt that died before saving the step
            provider = "stored"
        else:
            png, provider = await self._ask(
                self.providers.image, "generate", data.prompt, data.seed, smol_id=data.smol_id, step=Step.IMAGE
            )
            await outlasting_outages(lambda: self.store.put(key, png, "image/png"))
        await outlasting_outages(
            lambda: steps.save_image(self.pool, data.smol_id, key, provider)
        )
        return GenerateImageResult(image_key=key, provider=provider)

    @activity.defn
    @durable
    async def describe_image(self, data: DescribeImageInput) -> DescribeImageResult:
        png = await self.store.get(data.image_key)
        text, provider = await self._ask(
            self.providers.describe, "describe", data.prompt, png, smol_id=data.smol_id, step=Step.DESCRIPTION
        )
        await outlasting_outages(lambda: steps.save_description(self.pool, data.smol_id, text, provider))
        return DescribeImageResult(description=text, provider=provider)

    @activity.defn
    @durable
    async def generate_lyrics(self, data: GenerateLyricsInput) -> GenerateLyricsResult:
        lyrics, provider = await self._ask(
            self.providers.lyrics, "write", data.prompt, data.description, data.instrumental, data.seed,
            smol_id=data.smol_id, step=Step.LYRICS,
        )  # fmt: skip
        if not lyrics.title.strip() or (not data.instrumental and not lyrics.lyrics.strip()) or len(lyrics.style) < 2:
            raise IncompleteLyrics(f"{provider} wrote lyrics without a title, words or 2 style tags")
        await outlasting_outages(lambda: steps.save_lyrics(self.pool, data.smol_id, lyrics, provider))
        return GenerateLyricsResult(lyrics=lyrics, provider=provider)

    @activity.defn
    @durable
    async def check_nsfw(self, data: CheckNsfwInput) -> CheckNsfwResult:
        text = "\n".join([data.prompt, data.lyrics.title, data.lyrics.lyrics])
        verdict, provider = await self._ask(self.providers.nsfw, "check", text, smol_id=data.smol_id, step=Step.NSFW)
        await outlasting_outages(lambda: steps.save_nsfw(self.pool, data.smol_id, verdict, provider))
        return CheckNsfwResult(nsfw=verdict, provider=provider)

    @activity.defn
    @durable
    async def submit_songs(self, data: SubmitSongsInput) -> SubmitSongsResult:
        job = SongJob(
            smol_id=data.smol_id, submission=data.submission, title=data.lyrics.title, lyrics=data.lyrics.lyrics,
            style=data.lyrics.style, instrumental=data.instrumental, prompt=data.prompt,
            description=data.description, artist=data.address, image_key=data.image_key, seed=data.seed,
            params=data.song_params,
        )  # fmt: skip
        saved = await steps.load(self.pool, data.smol_id)
        if saved.song_ids and saved.song_submission == data.submission:
            return SubmitSongsResult(song_ids=saved.song_ids, provider=saved.song_provider)  # paid for already
        first_try = await repo.first_call_at(self.pool, data.smol_id, Step.SUBMIT) or activity.info().scheduled_time
        job.since = first_try.isoformat()
        chain = as_chain(self.providers.songs)
        if data.song_model:
            chain = chain.starting_with(data.song_model)
        ids, provider = await self._ask(chain, "submit", job, smol_id=data.smol_id, step=Step.SUBMIT,
                                        taken=lambda variant, found: repo.songs_taken(self.pool, data.smol_id,
                                                                                      variant, found))  # fmt: skip
        if len(set(ids)) != len(ids):
            message = f"{provider} answered one song id for both variants ({ids[0]}): the smol would wait on it twice"
            raise DuplicateSongId(message)

        async def save() -> None:
            for variant, music_id in enumerate(ids):
                await repo.save_song(self.pool, data.smol_id, music_id, variant, provider, status=SongStatus.QUEUED)
            await steps.save_song_ids(self.pool, data.smol_id, ids, provider, data.submission)

        await outlasting_outages(save)  # SongIdTaken: one smol's songs never overwrite another's
        return SubmitSongsResult(song_ids=ids, provider=provider)

    @activity.defn
    @durable
    async def poll_songs(self, data: PollSongsInput) -> PollSongsResult:
        """Wait until a song changes (status or audio), the way Temporal recommends polling:
        - short intervals: a heartbeating loop inside this activity, returning on a change or after the poll window;
        - long intervals: one look per attempt, then a benign retryable error, so the retry policy waits and the
          history does not grow while nothing happens.
        Gives up when no song has progressed for the stall limit (kept in Postgres, so it holds across attempts)."""
        provider = as_chain(self.providers.songs).named(data.provider)
        started = time.monotonic()
        async with heartbeating():
            while True:
                try:
                    if getattr(provider, "pays_on_poll", False):  # ElevenLabs: a poll composes a missing song
                        async with self._recorded(data.smol_id, Step.SUBMIT, provider.name):
                            songs = await provider.poll(data.song_ids)
                    else:
                        songs = await provider.poll(data.song_ids)
                except ProviderError:
                    await self._fail_if_stalled(data.song_ids)
                    raise
                for variant, song in enumerate(songs):
                    await repo.save_song(self.pool, data.smol_id, song.music_id, variant, data.provider, song.status,
                                         audio_url=song.audio)  # fmt: skip
                if songs != data.known:
                    return PollSongsResult(songs=songs)
                await self._fail_if_stalled(data.song_ids)
                if self.poll_interval > self.heartbeat_poll_limit:
                    raise SongsNotReady(timedelta(seconds=self.poll_interval))
                if time.monotonic() - started + self.poll_interval > self.poll_window:
                    return PollSongsResult(songs=songs)
                await asyncio.sleep(self.poll_interval)

    async def _fail_if_stalled(self, song_ids: list[str]) -> None:
        stalled = await repo.seconds_since_song_progress(self.pool, song_ids)
        if stalled > self.song_stall_seconds:
            raise SongStalled(f"songs made no progress for {stalled:.0f} s")

    @activity.defn
    @durable
    async def archive_song(self, data: ArchiveSongInput) -> ArchiveSongResult:
        key = song_key(data.music_id)
        if not await self.store.exists(key):
            source = as_chain(self.providers.songs)
            async with heartbeating(), self._recorded(data.smol_id, Step.ARCHIVE, data.provider):
                audio = await source.named(data.provider).fetch_audio(data.music_id, data.audio_url)
            await outlasting_outages(lambda: self.store.put(key, audio, "audio/mpeg"))
        await outlasting_outages(
            lambda: repo.save_song(self.pool, data.smol_id, data.music_id, data.variant, data.provider,
                                   SongStatus.COMPLETE, key)
        )
        return ArchiveSongResult(music_id=data.music_id, object_key=key)

    @activity.defn
    @durable
    async def store_results(self, data: StoreResultsInput) -> StoreResultsResult:
        async with self.pool.acquire() as conn:
            created = await repo.insert_smol(
                conn, smol_id=data.smol_id, title=data.title, song_1=data.song_ids[0], song_2=data.song_ids[1],
                public=data.public, instrumental=data.payload.instrumental, address=data.payload.address,
                playlist=data.payload.playlist,
            )  # fmt: skip
        return StoreResultsResult(created=created)

    @activity.defn
    @durable
    async def discard_smol(self, data: DiscardSmolInput) -> DiscardSmolResult:
        keys = await repo.delete_smol(self.pool, data.smol_id)
        for key in keys:
            await self.store.delete(key)
        return DiscardSmolResult(objects_removed=len(keys))

    @activity.defn
    async def deliver_webhook(self, data: DeliverWebhookInput) -> DeliverWebhookResult:
        """POST the signed event to the address that was checked; 5xx, 408, 429, network and name-resolution errors
        are retried, other refusals are final."""
        body = json.dumps(data.event, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "smol-webhooks/1",
            SIGNATURE_HEADER: sign(self.webhook_secret, body),
            EVENT_ID_HEADER: data.event_id,
        }
        try:
            response = await deliver(data.url, body, headers, allow_private=self.webhooks_allow_private)
        except (Unresolvable, ServiceUnavailable) as exc:  # (ServiceUnavailable: every resolver thread is busy)
            raise WebhookUnreachable(str(exc)) from None
        except InvalidInput as exc:
            raise WebhookRefused(str(exc)) from None
        except httpx.HTTPError as exc:
            raise WebhookUnreachable(f"webhook not delivered: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise WebhookRetry(f"webhook receiver answered {response.status_code}")
        if response.status_code >= 300:
            raise WebhookRefused(f"webhook receiver refused with {response.status_code}")
        return DeliverWebhookResult(status_code=response.status_code, attempt=activity.info().attempt)

    def all(self) -> list:
        return [
            self.load_steps, self.save_payload, self.generate_image, self.describe_image, self.generate_lyrics,
            self.check_nsfw, self.submit_songs, self.poll_songs, self.archive_song, self.store_results,
            self.discard_smol, self.deliver_webhook, *IndexActivities(self.pool, self.store).all(),
        ]  # fmt: skip
