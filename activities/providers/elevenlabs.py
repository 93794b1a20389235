"""ElevenLabs music: one synchronous request per song, the audio is the response body.

    POST /v1/music?output_format=mp3_44100_128  {prompt, music_length_ms, model_id, force_instrumental}
         xi-api-key: …                       -> audio/mpeg   (400/422 {"detail": {"status": "bad_prompt"}} refused)

To fit the submit-then-poll shape, `submit` only records the job (no charge) and returns ids derived from the smol
and the submission; `poll` makes each missing song and stores it at once under its song key, so a retried poll
never asks (and pays) again for a song already made. A song whose answer was lost mid-transfer is paid twice: the
API has no idempotency key.
"""

import hashlib
import json
from dataclasses import asdict

import httpx

from activities.providers.billing import billable
from activities.providers.http import read_audio, refusal, unanswered
from activities.providers.interfaces import SongJob
from contracts.smol import Song
from contracts.steps import SongStatus
from smol.errors import NotFound, PromptRefused, ProviderError
from smol.ids import song_key
from smol.store import ObjectStore

PROMPT_LIMIT = 2000
REFUSALS = ("bad_prompt", "bad_composition_plan")


class ElevenLabsSongs:
    name = "elevenlabs"
    pays_on_poll = True  # `poll` composes a missing song: the pipeline meters each poll as a provider call

    def __init__(self, http: httpx.AsyncClient, api_key: str, store: ObjectStore,
                 base_url: str = "https://api.elevenlabs.io", output_format: str = "mp3_44100_128",
                 model: str = "music_v1", seconds: int = 30):  # fmt: skip
        self.http, self._key, self.store = http, api_key, store
        self.base_url, self.output_format = base_url.rstrip("/"), output_format
        self.model, self.seconds = model, seconds

    @staticmethod
    def _job_key(music_id: str) -> str:
        return f"provider-jobs/elevenlabs/{music_id}.json"

    async def submit(self, job: SongJob, taken=None) -> list[str]:
        ids = []
        for variant in (0, 1):
            music_id = "el" + hashlib.sha256(f"{job.smol_id}:{job.submission}:{variant}".encode()).hexdigest()[:30]
            await self.store.put(self._job_key(music_id), json.dumps(asdict(job)).encode(), "application/json")
            ids.append(music_id)
        return ids

    async def poll(self, song_ids: list[str]) -> list[Song]:
        """Makes at most one missing song per call (the API limits concurrent generations, and a short call is
        never cut by the activity's timeout halfway through a paid song)."""
        songs, made_one = [], False
        for music_id in song_ids:
            if await self.store.exists(song_key(music_id)):
                songs.append(Song(music_id, SongStatus.COMPLETE))
            elif made_one:
                songs.append(Song(music_id, SongStatus.GENERATING))
            else:
                songs.append(Song(music_id, await self._make(music_id)))
                made_one = True
        return songs

    async def _make(self, music_id: str) -> int:
        try:
            job = SongJob(**json.loads(await self.store.get(self._job_key(music_id))))
        except NotFound:
            raise ProviderError(f"elevenlabs has no job {music_id}", retryable=False) from None
        try:
            audio = await self._compose(job)
        except ProviderError as exc:
            if isinstance(exc, PromptRefused):
                return SongStatus.REFUSED
            raise
        await self.store.put(song_key(music_id), audio, "audio/mpeg")
        await self.store.delete(self._job_key(music_id))
        return SongStatus.COMPLETE

    def _body(self, job: SongJob) -> dict:
        seconds = int((job.params or {}).get("duration") or self.seconds)
        prompt = f"{job.prompt}\nStyle: {', '.join(job.style)}\nTitle: {job.title}"
        if not job.instrumental and job.lyrics:
            prompt += f"\nLyrics:\n{job.lyrics}"
        return {"prompt": prompt[:PROMPT_LIMIT], "music_length_ms": min(max(seconds, 10), 300) * 1000,
                "model_id": self.model, "force_instrumental": job.instrumental}  # fmt: skip

    async def _compose(self, job: SongJob) -> bytes:
        """The song's audio (a billable request; a refused prompt is not billed: PromptRefused)."""
        url = f"{self.base_url}/v1/music"
        headers = {"xi-api-key": self._key}
        async with billable():
            try:
                async with self.http.stream("POST", url, params={"output_format": self.output_format},
                                            json=self._body(job), headers=headers) as response:  # fmt: skip
                    if response.is_success:
                        return await read_audio(response, self.name)
                    text = (await response.aread()).decode(errors="replace")
            except httpx.HTTPError as exc:
                raise unanswered(self.name, exc) from None
            if response.status_code in (400, 422) and any(reason in text for reason in REFUSALS):
                raise PromptRefused("elevenlabs refused the prompt")
            raise refusal(self.name, response.status_code, text, self._key)

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes:
        try:
            return await self.store.get(song_key(music_id))
        except NotFound:
            raise ProviderError(f"elevenlabs has not made {music_id} yet") from None
