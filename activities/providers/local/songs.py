"""An offline song service with the submit-then-poll shape of the remote ones.

A submitted job is written to disk and becomes ready `delay` seconds later; the first poll after that renders
it. Job ids are derived from the smol, the submission number and the variant, so submitting the same job again
finds the jobs already made instead of starting (and paying for) new ones.
"""

import asyncio
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from activities.cpu import on_cpu
from activities.providers.interfaces import SongJob
from activities.providers.local import music
from contracts.smol import Song
from contracts.steps import SongStatus
from smol.errors import NotFound, ProviderError
from smol.store import FileStore, ObjectStore


def music_id_for(job: SongJob, variant: int) -> str:
    return hashlib.sha256(f"{job.smol_id}:{job.submission}:{variant}".encode()).hexdigest()[:32]


class LocalSongs:
    name = "local"

    def __init__(self, store: ObjectStore, jobs_root: Path, seconds: int = 30, delay: float = 2.0):
        self.store = store  # where the covers are
        self.jobs = FileStore(jobs_root)
        self.seconds = seconds
        self.delay = delay

    async def submit(self, job: SongJob, taken=None) -> list[str]:
        ids = []
        for variant in (0, 1):
            music_id = music_id_for(job, variant)
            if not await self.jobs.exists(f"jobs/{music_id}.json"):
                spec = {
                    "job": asdict(job),
                    "variant": variant,
                    "seconds": int((job.params or {}).get("duration") or self.seconds),
                    "ready_at": time.time() + self.delay,
                }
                await self.jobs.put(f"jobs/{music_id}.json", json.dumps(spec).encode())
            ids.append(music_id)
        return ids

    async def poll(self, song_ids: list[str]) -> list[Song]:
        return list(await asyncio.gather(*(self._poll_one(music_id) for music_id in song_ids)))

    async def _poll_one(self, music_id: str) -> Song:
        try:
            spec = json.loads(await self.jobs.get(f"jobs/{music_id}.json"))
        except NotFound:
            return Song(music_id=music_id, status=SongStatus.UNAVAILABLE)
        remaining = spec["ready_at"] - time.time()
        if remaining > 0:
            status = SongStatus.SUBMITTED if remaining > self.delay / 2 else SongStatus.GENERATING
            return Song(music_id=music_id, status=status)
        if not await self.jobs.exists(f"audio/{music_id}.mp3"):
            await self.jobs.put(f"audio/{music_id}.mp3", await self._render(spec))
        return Song(music_id=music_id, status=SongStatus.COMPLETE)

    async def _render(self, spec: dict) -> bytes:
        job = SongJob(**spec["job"])
        try:
            cover = await self.store.get(job.image_key)
        except NotFound:
            cover = None
        arrangement = music.plan(job.style, job.seed)

        def render() -> bytes:
            samples = music.render(arrangement, spec["seconds"], spec["variant"], job.seed)
            return music.encode_mp3(
                samples, title=job.title, artist=job.artist, arrangement=arrangement, cover_png=cover
            )

        return await on_cpu(render)

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes:
        try:
            return await self.jobs.get(f"audio/{music_id}.mp3")
        except NotFound:
            raise ProviderError(f"song {music_id} has no audio yet") from None
