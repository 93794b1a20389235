"""The side effects of the SoundFlow catalog: plan a day, render and store tracks, make premium tracks through a
provider chain, rebuild the JSON catalogs from the per-track records, and check them.

Every track is stored as its MP3 plus a record `catalog/tracks/<entry id>.json` (its catalog entry). The records are
the source of truth; the catalogs are rebuilt from them, each file written whole (a reader never sees half of one).
"""

import asyncio
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import httpx
from temporalio import activity

from activities.attempts import heartbeating
from activities.providers.http import json_of, read_audio, refusal, send, unanswered
from activities.soundflow import catalog as catalogs
from activities.soundflow.plan import PlanError, load_plan
from activities.soundflow.render import make_mp3
from contracts.catalog import (
    MakePremiumInput,
    PlanDayInput,
    PlanDayResult,
    PremiumTrackResult,
    RebuildCatalogsInput,
    RebuildCatalogsResult,
    RenderTrackInput,
    RenderTrackResult,
    TrackSpec,
    ValidateCatalogsInput,
    ValidateCatalogsResult,
)
from smol.errors import CatalogInvalid, InvalidPlan, NotFound, PremiumFailed, ProviderError
from smol.settings import Settings
from smol.store import ObjectStore

BITRATES = {"free": 192, "premium": 320}
# Replicate's meta/musicgen has no stereo-medium; its other stereo model stands in for it.
MUSICGEN_VERSIONS = {"musicgen-stereo-large": "stereo-large", "musicgen-stereo-medium": "stereo-melody-large"}


def seed_of(entry_id: str) -> int:
    return int.from_bytes(hashlib.sha256(entry_id.encode()).digest()[:4], "big")


def premium_prompt(spec: TrackSpec) -> str:
    tags = ", ".join(spec.goal_tags + spec.nature_tags)
    return (f"Instrumental {spec.genre} track for {spec.category.lower()}, {spec.bpm} BPM, key of {spec.key}, "
            f"energy {spec.energy_min}-{spec.energy_max} of 100, {tags}, high quality stereo mix")  # fmt: skip


class CatalogActivities:
    def __init__(self, store: ObjectStore, settings: Settings, http: httpx.AsyncClient | None = None):
        self.store, self.settings, self.http = store, settings, http
        self._processes = ProcessPoolExecutor(settings.catalog_render_processes, mp_context=get_context("spawn"),
                                              initializer=_exit_with_parent, initargs=(os.getpid(),))  # fmt: skip
        for _ in range(settings.catalog_render_processes):  # start them now: the first day does not wait for imports
            self._processes.submit(_call, int, (), {})
        self._rebuilding = asyncio.Lock()

    def close(self) -> None:
        self._processes.shutdown(wait=False, cancel_futures=True)

    async def _in_process(self, fn, *args, **kwargs):
        """Run CPU-bound work in the render processes (both cores, and the event loop keeps heartbeating)."""
        loop = asyncio.get_running_loop()
        async with heartbeating():
            return await loop.run_in_executor(self._processes, _call, fn, args, kwargs)

    @activity.defn(name="catalog_plan_day")
    async def plan_day(self, data: PlanDayInput) -> PlanDayResult:
        try:
            plan = load_plan(self.settings.catalog_plan)
        except PlanError as exc:
            raise InvalidPlan(str(exc)) from None
        return PlanDayResult(plan.day(data.date, data.seconds))

    @activity.defn(name="catalog_render_track")
    async def render_track(self, data: RenderTrackInput) -> RenderTrackResult:
        entry_id = catalogs.entry_id(data.tier, data.date, data.spec.id)
        key = catalogs.object_key(data.tier, data.date, entry_id)
        entry = catalogs.entry(data.spec, data.date, data.tier, key, data.spec.seconds)
        if await self.store.exists(key):
            if await self.store.exists(catalogs.record_key(entry_id)):
                return RenderTrackResult(entry_id, key, rendered=False)
            # Puts are atomic, so the audio is whole: an attempt that died before its record only lacks the record,
            # and the track is new to the catalog now.
            await self._store_record(entry)
            return RenderTrackResult(entry_id, key, rendered=True)
        started = time.perf_counter()
        title = catalogs.title(data.spec.id, data.date)
        mp3 = await self._in_process(make_mp3, data.spec, seed=seed_of(entry_id), bitrate=BITRATES[data.tier],
                                     quality=self._quality(data.tier), title=title)  # fmt: skip
        await self._store_track(key, mp3, entry)
        return RenderTrackResult(entry_id, key, rendered=True, seconds=round(time.perf_counter() - started, 3))

    def _quality(self, tier: str) -> int:
        return self.settings.catalog_free_quality if tier == "free" else self.settings.catalog_premium_quality

    async def _store_track(self, key: str, mp3: bytes, entry: dict) -> None:
        """The audio first, then its record: a record always points at a whole file."""
        await self.store.put(key, mp3, "audio/mpeg")
        await self._store_record(entry)

    async def _store_record(self, entry: dict) -> None:
        await self.store.put(catalogs.record_key(entry["id"]), json.dumps(entry).encode(), "application/json")

    @activity.defn(name="catalog_make_premium")
    async def make_premium(self, data: MakePremiumInput) -> PremiumTrackResult:
        """A premium track from the first provider of the chain that makes one, re-encoded at 320 kbps."""
        entry_id = catalogs.entry_id("premium", data.date, data.spec.id)
        key = catalogs.object_key("premium", data.date, entry_id)
        record = catalogs.record_key(entry_id)
        if await self.store.exists(record) and await self.store.exists(key):
            made = json.loads(await self.store.get(record))
            return PremiumTrackResult(entry_id, key, made.get("provider", ""), rendered=False)
        failures = []
        for name in self.settings.chain("catalog_premium"):
            try:
                mp3, seconds = await self._premium_mp3(name, data, entry_id)
            except ProviderError as exc:
                failures.append(f"{name}: {exc}")
                activity.logger.warning("premium %s: %s failed (%s), trying the next provider", entry_id, name, exc)
                continue
            entry = {**catalogs.entry(data.spec, data.date, "premium", key, seconds), "provider": name}
            await self._store_track(key, mp3, entry)
            return PremiumTrackResult(entry_id, key, name)
        raise PremiumFailed("no premium provider made the track: " + ("; ".join(failures) or "none configured"))

    async def _premium_mp3(self, name: str, data: MakePremiumInput, entry_id: str) -> tuple[bytes, float]:
        """The premium MP3 (320 kbps, tagged) and its length in seconds."""
        spec = data.spec
        options = {"bitrate": BITRATES["premium"], "quality": self._quality("premium"),
                   "title": catalogs.title(spec.id, data.date)}  # fmt: skip
        if name == "local":
            return await self._in_process(make_mp3, spec, seed=seed_of(entry_id), **options), float(spec.seconds)
        if name == "musicgen":
            audio = await self._musicgen(data, entry_id)
        elif name == "elevenlabs":
            audio = await self._elevenlabs(spec)
        else:
            raise ProviderError(f"unknown premium provider {name!r}", retryable=False)
        try:
            return await self._in_process(catalogs.transcode, audio, spec, comment=name, **options)
        except ValueError as exc:
            raise ProviderError(f"{name} audio does not decode: {exc}", retryable=False) from None

    def _secret(self, value, name: str) -> str:
        if value is None or self.http is None:
            raise ProviderError(f"{name} is in the premium chain but its API key setting is empty", retryable=False)
        return value.get_secret_value()

    async def _musicgen(self, data: MakePremiumInput, entry_id: str) -> bytes:
        """One Replicate prediction. Its id is saved before polling, so a retried attempt polls it again instead of
        paying for another."""
        token = self._secret(self.settings.replicate_api_token, "musicgen")
        from activities.providers.replicate import ReplicateSongs

        adapter = ReplicateSongs(self.http, token, self.settings.replicate_musicgen_version, "musicgen",
                                 self.settings.replicate_url, data.spec.seconds)  # fmt: skip
        job = f"provider-jobs/catalog/{entry_id}.json"
        try:
            prediction_id = json.loads(await self.store.get(job))["prediction"]
        except NotFound:
            body = {"version": adapter.version, "input": {
                "prompt": premium_prompt(data.spec), "duration": data.spec.seconds, "output_format": "mp3",
                "model_version": MUSICGEN_VERSIONS.get(data.model, "stereo-large"), "seed": seed_of(entry_id) % 2**31,
            }}  # fmt: skip
            headers = {"Authorization": f"Bearer {token}"}
            created = json_of(await send(self.http, "musicgen", "POST", f"{adapter.base_url}/predictions",
                                         headers=headers, json=body, secret=token), "musicgen")  # fmt: skip
            if not isinstance(created, dict) or not created.get("id"):
                raise ProviderError("musicgen answered without a prediction") from None
            prediction_id = str(created["id"])
            await self.store.put(job, json.dumps({"prediction": prediction_id}).encode(), "application/json")
        async with heartbeating():
            while True:
                (song,) = await adapter.poll([prediction_id])
                if song.failed:
                    await self.store.delete(job)  # a failed prediction is not polled again
                    raise ProviderError(f"musicgen prediction {prediction_id} failed", retryable=False)
                if song.complete:
                    return await adapter.fetch_audio(prediction_id, song.audio)
                await asyncio.sleep(self.settings.song_poll_interval)

    async def _elevenlabs(self, spec: TrackSpec) -> bytes:
        key = self._secret(self.settings.elevenlabs_api_key, "elevenlabs")
        body = {"prompt": premium_prompt(spec), "music_length_ms": min(max(spec.seconds, 10), 300) * 1000,
                "model_id": self.settings.elevenlabs_model, "force_instrumental": True}  # fmt: skip
        url = f"{self.settings.elevenlabs_url}/v1/music"
        async with heartbeating():
            try:
                params = {"output_format": self.settings.elevenlabs_output_format}
                async with self.http.stream("POST", url, params=params, json=body,
                                            headers={"xi-api-key": key}) as response:  # fmt: skip
                    if response.is_success:
                        return await read_audio(response, "elevenlabs")
                    text = (await response.aread()).decode(errors="replace")
            except httpx.HTTPError as exc:
                raise unanswered("elevenlabs", exc) from None
        raise refusal("elevenlabs", response.status_code, text, key)

    @activity.defn(name="catalog_rebuild")
    async def rebuild(self, data: RebuildCatalogsInput) -> RebuildCatalogsResult:
        """Write every catalog from the track records. After writing, the records are listed again: if another
        rebuild (another worker, another day) added one meanwhile, write again, so the last write is never stale."""
        async with self._rebuilding:
            written = None
            while True:
                entries = await catalogs.read_records(self.store)
                if written is not None and [e["id"] for e in entries] == written:
                    break
                await catalogs.write_catalogs(self.store, entries, catalogs.url_base(self.settings))
                written = [e["id"] for e in entries]
        free = sum(1 for e in entries if e["tier"] == "free")
        return RebuildCatalogsResult(len(entries), free, len(entries) - free)

    @activity.defn(name="catalog_validate")
    async def validate(self, data: ValidateCatalogsInput) -> ValidateCatalogsResult:
        """Check the catalogs; a problem fails the attempt (a rebuild running meanwhile may explain it: retried)."""
        result = await catalogs.validate(self.store, data.decode_dates)
        if result.problems:
            raise CatalogInvalid(f"{len(result.problems)} catalog problem(s): " + "; ".join(result.problems[:10]))
        return result

    def all(self) -> list:
        return [self.plan_day, self.render_track, self.make_premium, self.rebuild, self.validate]


def _call(fn, args, kwargs):
    return fn(*args, **kwargs)


def _exit_with_parent(parent: int) -> None:
    """In a render process: exit once the worker that started it is gone. A worker killed outright (SIGKILL, the OOM
    killer) never shuts its pool down, and the pool's queue, which each render process also holds open, would keep
    them waiting forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
