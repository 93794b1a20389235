"""SmolWorkflow: a prompt becomes a cover, a description, lyrics, a safety verdict and two songs.

Deterministic orchestration only. Every side effect is an activity (activities/pipeline.py); every activity's
timeout and retry policy is in workflows/policies.py.
"""

import asyncio
from collections.abc import Coroutine

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows.index_backfill import analyze, index_analyzed, index_one

with workflow.unsafe.imports_passed_through():
    from activities.pipeline import SmolActivities
    from contracts.search import AnalyzeSmolResult
    from contracts.search_attributes import SMOL_ADDRESS, SMOL_STATUS, SMOL_STEP
    from contracts.smol import (
        ArchiveSongInput,
        CheckNsfwInput,
        DeliverWebhookInput,
        DescribeImageInput,
        DiscardSmolInput,
        GenerateImageInput,
        GenerateLyricsInput,
        LoadStepsInput,
        LoadStepsResult,
        PauseSignal,
        Payload,
        PollSongsInput,
        ResumeSignal,
        SavePayloadInput,
        SmolInput,
        SmolResult,
        SmolStatus,
        Song,
        StepState,
        StoreResultsInput,
        SubmitSongsInput,
    )  # fmt: skip
    from contracts.steps import SongStatus, Step, failure_reason
    from contracts.views import smol_view
    from smol.errors import SongFailed, to_temporal
    from workflows.policies import STEP_POLICIES



def _refuse_failed(song: Song) -> None:
    if song.failed:
        reason = failure_reason(song.status)
        raise to_temporal(SongFailed(f"song {song.music_id} failed with status {song.status} ({reason})"))


def _seed_of(smol_id: str, seed: int | None) -> int:
    return seed if seed is not None else int(smol_id[:12], 16)


@workflow.defn(name="SmolWorkflow")
class SmolWorkflow:
    def __init__(self) -> None:
        self.steps = {name: StepState(name) for name in Step}
        self.current: str | None = None
        self.paused = False
        self.finished = False
        self.error: dict | None = None
        self.saved = LoadStepsResult()
        self.requested: Payload | None = None  # shown (and used for privacy) until the saved payload exists
        self.songs: dict[str, Song] = {}
        self.published: dict[str, str] = {}

    @workflow.run
    async def run(self, data: SmolInput) -> SmolResult:
        self.requested = data.payload
        self._publish()
        self._count("smol_started")
        try:
            result = await self._pipeline(data)
            self._publish()
            self._count("smol_completed")
            await self._notify(data.smol_id, "smol.completed", {"title": result.title, "song_ids": result.song_ids,
                                                                "public": result.public})  # fmt: skip
            return result
        except asyncio.CancelledError:
            self._count("smol_cancelled")
            await self._discard(data.smol_id)
            raise
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                await self._discard(data.smol_id)
                raise
            cause = exc.cause if isinstance(exc.cause, ApplicationError) else exc
            self.error = {"name": getattr(cause, "type", None) or "ActivityError", "message": str(cause)}
            if self.current:
                self.steps[self.current].state = "failed"
            self._publish()
            self._count("smol_failed", {"error": self.error["name"]})
            await self._notify(data.smol_id, "smol.failed", {"error": self.error})
            raise ApplicationError(
                f"{self.current} failed: {cause}", type=self.error["name"], non_retryable=True
            ) from exc
        except ApplicationError as exc:
            self.error = {"name": exc.type or "ApplicationError", "message": str(exc)}
            self._publish()
            self._count("smol_failed", {"error": self.error["name"]})
            await self._notify(data.smol_id, "smol.failed", {"error": self.error})
            raise

    async def _notify(self, smol_id: str, kind: str, details: dict) -> None:
        """Deliver the creator's webhook, if they gave one; a receiver that never answers does not fail the smol."""
        payload = self.saved.payload or self.requested
        if not payload or not payload.webhook_url:
            return
        event = {"type": kind, "smol_id": smol_id, "status": self._status(), "occurred_at": workflow.now().isoformat(),
                 **details}  # fmt: skip
        event.update({k: v for k, v in (("title", payload.title), ("metadata", payload.metadata)) if v is not None})
        event_id = f"{smol_id}:{workflow.info().run_id}:{kind}"
        try:
            await workflow.execute_activity_method(
                SmolActivities.deliver_webhook,
                DeliverWebhookInput(payload.webhook_url, event_id, event),
                **STEP_POLICIES["deliver_webhook"].activity_options(),
            )
        except ActivityError as exc:
            workflow.logger.warning("webhook for smol %s not delivered: %s", smol_id, exc.cause or exc)

    def _count(self, name: str, attributes: dict | None = None) -> None:
        """A replay-safe counter, exported with the worker's Temporal metrics."""
        workflow.metric_meter().create_counter(name, "smols").add(1, attributes or {})

    async def _discard(self, smol_id: str) -> None:
        """A cancelled smol leaves nothing behind: its saved steps, song rows and objects are removed."""
        self.current = "discard"
        await workflow.execute_activity_method(
            SmolActivities.discard_smol, DiscardSmolInput(smol_id), **STEP_POLICIES["discard_smol"].activity_options()
        )

    async def _pipeline(self, data: SmolInput) -> SmolResult:
        smol_id, seed = data.smol_id, _seed_of(data.smol_id, data.seed)
        saved = self.saved

        if data.resume:
            self.saved = saved = await self._step(Step.LOAD, SmolActivities.load_steps, LoadStepsInput(smol_id))
        else:
            self.steps[Step.LOAD].state = "skipped"

        payload = saved.payload
        if payload is None:
            payload = (
                await self._step(Step.PAYLOAD, SmolActivities.save_payload, SavePayloadInput(smol_id, data.payload))
            ).payload
            saved.payload = payload
        else:
            self._reused(Step.PAYLOAD)

        if saved.image_key is None:
            result = await self._step(
                Step.IMAGE, SmolActivities.generate_image, GenerateImageInput(smol_id, payload.prompt, seed)
            )
            saved.image_key = result.image_key
        else:
            self._reused(Step.IMAGE)

        if saved.description is None:
            result = await self._step(
                Step.DESCRIPTION,
                SmolActivities.describe_image,
                DescribeImageInput(smol_id, payload.prompt, saved.image_key),
            )
            saved.description = result.description
        else:
            self._reused(Step.DESCRIPTION)

        if saved.lyrics is None:
            result = await self._step(
                Step.LYRICS,
                SmolActivities.generate_lyrics,
                GenerateLyricsInput(smol_id, payload.prompt, saved.description, payload.instrumental, seed),
            )
            saved.lyrics = result.lyrics
        else:
            self._reused(Step.LYRICS)

        safety, submission = self._check_safety(smol_id, payload), self._submit_songs(smol_id, payload, seed)
        overlap = workflow.patched("overlap-independent-steps")
        if overlap:  # the verdict only decides visibility: no need to wait
            await self._together({Step.NSFW: safety, Step.SUBMIT: submission})
        else:
            await safety
            await submission

        await self._wait_for_songs(smol_id, saved.song_ids, saved.song_provider or "local")

        public = payload.public and saved.nsfw.safe
        # Analysis only reads the archived songs: where steps overlap, it runs while the results are stored.
        analysis = None
        if overlap:
            await self._gate()  # (paused or cancelled: not even the analysis starts)
            analysis = asyncio.create_task(self._analysis(smol_id))
        try:
            await self._step(
                Step.STORE,
                SmolActivities.store_results,
                StoreResultsInput(smol_id, payload, payload.title or saved.lyrics.title, saved.song_ids, public),
            )
        except BaseException:  # (failed or cancelled: nothing to index)
            if analysis is not None:
                analysis.cancel()
            raise
        self.current, self.finished = None, True
        if analysis is not None:
            await self._index(smol_id, analysis)
        elif workflow.patched("index-after-store"):
            await self._index(smol_id)
        return SmolResult(smol_id=smol_id, title=payload.title or saved.lyrics.title, song_ids=saved.song_ids,
                          public=public)

    async def _together(self, steps: dict[str, Coroutine]) -> None:
        """Run the steps at once and wait for every one of them, even when one fails or the run is cancelled (so
        a discard never races a step's late write, and a failed run leaves no step half done); then fail as the
        first of them (in the order given) that failed."""
        results = await asyncio.gather(*steps.values(), return_exceptions=True)
        for name, result in zip(steps, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, ActivityError):
                    self.current = name
                raise result

    async def _check_safety(self, smol_id: str, payload: Payload) -> None:
        saved = self.saved
        if saved.nsfw is None:
            result = await self._step(
                Step.NSFW, SmolActivities.check_nsfw, CheckNsfwInput(smol_id, payload.prompt, saved.lyrics)
            )
            saved.nsfw = result.nsfw
        else:
            self._reused(Step.NSFW)

    async def _submit_songs(self, smol_id: str, payload: Payload, seed: int) -> None:
        saved = self.saved
        if saved.song_ids is None:
            result = await self._step(
                Step.SUBMIT,
                SmolActivities.submit_songs,
                SubmitSongsInput(
                    smol_id,
                    payload.address,
                    payload.prompt,
                    saved.description,
                    saved.lyrics,
                    payload.instrumental,
                    saved.image_key,
                    seed,
                    saved.song_submission,
                    payload.song_model,
                    payload.song_params,
                ),  # fmt: skip
            )
            saved.song_ids, saved.song_provider = result.song_ids, result.provider
        else:
            self._reused(Step.SUBMIT)

    async def _analysis(self, smol_id: str) -> AnalyzeSmolResult | None:
        try:
            return await analyze(smol_id)
        except ActivityError as exc:
            workflow.logger.warning("smol %s not analysed: %s", smol_id, exc.cause)
            return None

    async def _index(self, smol_id: str, analysis: asyncio.Task | None = None) -> None:
        """Make the finished smol findable (search, "more like this"), from its `analysis` if it was started already.
        It is complete already: a failure, or a cancel now, leaves it to the next backfill and never fails or
        discards it."""
        try:
            if analysis is None:
                await index_one(smol_id)
            elif (analysed := await analysis) is not None:
                await index_analyzed(smol_id, analysed)
        except (ActivityError, asyncio.CancelledError) as exc:
            workflow.logger.warning("smol %s not indexed: %s", smol_id, exc.cause if isinstance(exc, ActivityError)
                                    else "cancelled")  # fmt: skip

    async def _wait_for_songs(self, smol_id: str, song_ids: list[str], provider: str) -> None:
        """Wait for both songs, archiving each as soon as it is complete. The poll activity itself waits for a
        change (or for its window to end), so there is no timer here; the stall limit is enforced there."""
        archived = {song.music_id for song in self.saved.songs} & set(song_ids)
        self.songs = {music_id: Song(music_id, SongStatus.QUEUED) for music_id in song_ids}
        for music_id in archived:
            self.songs[music_id] = Song(music_id, SongStatus.COMPLETE, f"/song/{music_id}.mp3")
        known: list[Song] = []
        await self._gate()
        self._begin(Step.ARCHIVE)
        self._begin(Step.POLL)
        while len(archived) < len(song_ids):
            await self._gate()
            polled = await workflow.execute_activity_method(
                SmolActivities.poll_songs,
                PollSongsInput(smol_id, song_ids, provider, known),
                **STEP_POLICIES["poll_songs"].activity_options(),
            )
            known = polled.songs
            if workflow.patched("archive-songs-together"):
                for song in polled.songs:
                    _refuse_failed(song)
                pending = [(v, song) for v, song in enumerate(polled.songs) if song.music_id not in archived]
                for _, song in pending:
                    self.songs[song.music_id] = song  # while it streams, `audio` is the provider's partial audio
                ready = [(variant, song) for variant, song in pending if song.complete]
                if ready:  # both variants usually finish together: archived at once
                    await asyncio.gather(*(self._archive(smol_id, v, song, provider, archived) for v, song in ready))
                    self.current = Step.POLL
                continue
            for variant, song in enumerate(polled.songs):  # (runs started before the patch archive one by one)
                _refuse_failed(song)
                if song.music_id in archived:
                    continue
                self.songs[song.music_id] = song
                if song.complete:
                    await self._archive(smol_id, variant, song, provider, archived)
                    self.current = Step.POLL
        self._end(Step.POLL)
        self._end(Step.ARCHIVE)

    async def _archive(self, smol_id: str, variant: int, song: Song, provider: str, archived: set[str]) -> None:
        self.current = Step.ARCHIVE
        await workflow.execute_activity_method(
            SmolActivities.archive_song,
            ArchiveSongInput(smol_id, song.music_id, variant, provider, song.audio),
            **STEP_POLICIES["archive_song"].activity_options(),
        )
        archived.add(song.music_id)
        self.songs[song.music_id] = Song(song.music_id, song.status, f"/song/{song.music_id}.mp3")

    async def _step(self, name: str, activity, arg):
        await self._gate()
        self._begin(name)
        policy = STEP_POLICIES[activity.__name__]
        result = await workflow.execute_activity_method(activity, arg, **policy.activity_options())
        self._end(name)
        return result

    async def _gate(self) -> None:
        """Between steps: wait here while paused, and stop if a cancel arrived. (A cancel that reaches an activity
        just as it completes is swallowed by the SDK when waiting for cancellation; this catches it.)"""
        await workflow.wait_condition(lambda: not self.paused or workflow.cancellation_reason() is not None)
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError()

    def _begin(self, name: str) -> None:
        self.current = name
        state = self.steps[name]
        state.state, state.started_at = "running", workflow.now().isoformat()
        self._publish()

    def _publish(self) -> None:
        """Keep the search attributes (owner, current step, status) current, for the UI and `smol list`."""
        payload = self.saved.payload or self.requested
        values = {"address": payload.address if payload else "", "step": self.current or "", "status": self._status()}
        if values != self.published:
            workflow.upsert_search_attributes(
                [SMOL_ADDRESS.value_set(values["address"]), SMOL_STEP.value_set(values["step"]),
                 SMOL_STATUS.value_set(values["status"])]
            )  # fmt: skip
            self.published = values

    def _end(self, name: str) -> None:
        state = self.steps[name]
        state.state, state.ended_at = "done", workflow.now().isoformat()

    def _reused(self, name: str) -> None:
        self.steps[name].state = "reused"

    @workflow.signal
    def pause(self, _: PauseSignal) -> None:
        self.paused = True
        self._publish()

    @workflow.signal
    def resume(self, _: ResumeSignal) -> None:
        self.paused = False
        self._publish()

    def _status(self) -> str:
        if self.error:
            return "errored"
        if self.finished:
            return "complete"
        if self.paused:
            return "paused"
        return "queued" if self.current is None else "running"

    @workflow.query
    def status(self) -> SmolStatus:
        return SmolStatus(
            status=self._status(),
            current_step=self.current,
            steps=list(self.steps.values()),
            kv_do=self._kv_do(),
            error=self.error,
        )

    def _kv_do(self) -> dict:
        return smol_view(self.saved, list(self.songs.values()), self.requested)
