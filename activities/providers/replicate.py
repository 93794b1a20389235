"""Replicate predictions for song models (meta/musicgen, riffusion/riffusion): create one prediction per variant,
then poll each until `succeeded`, `failed` or `canceled`.

    POST /v1/predictions {version, input}   -> {id, status, output, error}
    GET  /v1/predictions/{id}                -> the same, as it progresses
    GET  /v1/predictions                     -> {results: [...], next}, newest first

Replicate has no idempotency key, so before creating a prediction the adapter looks through the newest ones for
one with the same version and input that has not failed (the input carries a seed per smol, submission and
variant): a create whose answer was lost is found again instead of being paid for twice.
"""

import httpx

from activities.providers import ProviderError, SongJob
from activities.providers.http import download_finished, json_of, send
from workflows.models import Song

STATUS = {"starting": 1, "processing": 2, "succeeded": 4}
MUSICGEN_INPUTS = ("duration", "temperature", "top_k", "top_p", "classifier_free_guidance")


class ReplicateSongs:
    def __init__(self, http: httpx.AsyncClient, token: str, version: str, model: str = "musicgen",
                 base_url: str = "https://api.replicate.com/v1", seconds: int = 30):  # fmt: skip
        self.http, self._token, self.version, self.model = http, token, version, model
        self.base_url, self.seconds = base_url.rstrip("/"), seconds
        self.name = model

    async def _call(self, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self._token}"}
        response = await send(self.http, self.name, method, f"{self.base_url}{path}", headers=headers,
                              secret=self._token, **kwargs)  # fmt: skip
        data = json_of(response, self.name)
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderError(f"{self.name} answered without a prediction")
        return data

    def _input(self, job: SongJob, variant: int) -> dict:
        params = job.params or {}
        text = f"{job.prompt[:500]}. Style: {', '.join(job.style)}"
        if self.model == "riffusion":
            return {"prompt_a": text, "denoising": 0.75, "seed_image_id": "vibes", "num_inference_steps": 50}
        chosen = {key: params[key] for key in MUSICGEN_INPUTS if key in params}
        return {"prompt": text, "duration": self.seconds, "output_format": "mp3", "model_version": "stereo-large",
                "seed": (job.seed + 2 * job.submission + variant) % 2**31, **chosen}  # fmt: skip

    async def submit(self, job: SongJob) -> list[str]:
        ids = []
        for variant in (0, 1):
            body = {"version": self.version, "input": self._input(job, variant)}
            found = await self._created_before(body)
            ids.append(found or (await self._call("POST", "/predictions", json=body))["id"])
        return ids

    async def _created_before(self, body: dict) -> str | None:
        page = await self._call_page("/predictions")
        for prediction in page:
            if (prediction.get("version"), prediction.get("input")) == (body["version"], body["input"]) and \
                    prediction.get("status") not in ("failed", "canceled"):  # fmt: skip
                return str(prediction["id"])
        return None

    async def _call_page(self, path: str) -> list[dict]:
        headers = {"Authorization": f"Bearer {self._token}"}
        response = await send(self.http, self.name, "GET", f"{self.base_url}{path}", headers=headers,
                              secret=self._token)  # fmt: skip
        data = json_of(response, self.name)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ProviderError(f"{self.name} answered a prediction list without results")
        return [item for item in results if isinstance(item, dict) and item.get("id")]

    async def poll(self, song_ids: list[str]) -> list[Song]:
        songs = []
        for prediction_id in song_ids:
            data = await self._call("GET", f"/predictions/{prediction_id}")
            status = data.get("status")
            if status in ("failed", "canceled"):
                refused = "nsfw" in str(data.get("error") or "").lower()
                songs.append(Song(prediction_id, -1 if refused else -3))
                continue
            output = data.get("output")
            if isinstance(output, dict):  # riffusion: {"audio": url, "spectrogram": url}
                output = output.get("audio")
            if isinstance(output, list):
                output = output[0] if output else None
            songs.append(Song(prediction_id, STATUS.get(status, 1), output if status == "succeeded" else None))
        return songs

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes:
        return await download_finished(self, music_id, audio_url)
