"""The original's AI Song Generator service: lyrics, and songs from its `aisonggenerator` or `diffrhythm` source.

    POST /api/lyrics {prompt}                    -> {title, lyrics, style[]}
    POST /api/songs?source=S {...}               -> [song id, song id]
    GET  /api/songs?ids=a,b&source=S             -> [{music_id, status, audio}]   status >= 4 done, < 0 failed

Submissions carry an `Idempotency-Key` made from the smol, the submission number and the source, so asking again
after a lost answer finds the songs already paid for instead of starting new ones.
"""

import httpx

from activities.providers.http import download_finished, json_of, send
from activities.providers.interfaces import SongJob
from contracts.smol import Lyrics, Song
from smol.errors import ProviderError

SERVICE = "aisonggenerator"
LONG_PROMPT = 760


class AiSongGenerator:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str = "", source: str = "aisonggenerator"):
        self.http, self.base_url, self._key, self.source = http, base_url.rstrip("/"), api_key, source
        self.name = source

    def _headers(self, **extra) -> dict:
        return {**({"Authorization": f"Bearer {self._key}"} if self._key else {}), **extra}

    async def _call(self, method: str, path: str, **kwargs):
        response = await send(self.http, self.name, method, f"{self.base_url}{path}", secret=self._key, **kwargs)
        return json_of(response, self.name)

    async def write(self, prompt: str, description: str, instrumental: bool, seed: int) -> Lyrics:
        data = await self._call("POST", "/api/lyrics", json={"prompt": prompt}, headers=self._headers())
        try:
            return Lyrics(title=str(data["title"]), lyrics="" if instrumental else str(data["lyrics"]),
                          style=[str(tag) for tag in data["style"]])  # fmt: skip
        except (KeyError, TypeError):
            raise ProviderError(f"{self.name} answered lyrics without title, lyrics and style") from None

    async def submit(self, job: SongJob, taken=None) -> list[str]:
        prompt = job.prompt if len(job.prompt) > LONG_PROMPT else f"{job.prompt}\n\n{job.description}".strip()
        body = {"title": job.title, "lyrics": job.lyrics, "style": job.style, "prompt": prompt,
                "instrumental": job.instrumental}  # fmt: skip
        key = f"{job.smol_id}:{job.submission}:{self.source}"
        ids = await self._call("POST", "/api/songs", params={"source": self.source}, json=body,
                               headers=self._headers(**{"Idempotency-Key": key}))  # fmt: skip
        if not isinstance(ids, list) or len(ids) != 2 or not all(isinstance(i, str) and i for i in ids):
            raise ProviderError(f"{self.name} did not answer with two song ids")
        return ids

    async def poll(self, song_ids: list[str]) -> list[Song]:
        data = await self._call("GET", "/api/songs", params={"ids": ",".join(song_ids), "source": self.source},
                                headers=self._headers())  # fmt: skip
        try:
            by_id = {str(item["music_id"]): item for item in data}
            return [Song(music_id=i, status=int(by_id[i]["status"]), audio=by_id[i].get("audio")) for i in song_ids]
        except (KeyError, TypeError, ValueError):
            raise ProviderError(f"{self.name} answered a status without every song") from None

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes:
        return await download_finished(self, music_id, audio_url)
