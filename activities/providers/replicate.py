"""Replicate predictions for song models (meta/musicgen, riffusion/riffusion): create one prediction per variant,
then poll each until `succeeded`, `failed` or `canceled`.

    POST /v1/predictions {version, input}   -> {id, status, output, error}
    GET  /v1/predictions/{id}                -> the same, as it progresses
    GET  /v1/predictions                     -> {results: [...], next}, newest first

Replicate has no idempotency key, so before creating a prediction the adapter looks through its predictions, page
by page back to when the step was first tried, for one with the same version and input that has not failed and that
no other smol or variant has taken: a create whose answer was lost is found again instead of being paid for twice.
Musicgen's input carries a seed per smol, submission and variant; riffusion has no seed, so its variants start from
different seed images (and never share an input).
"""

from datetime import UTC, datetime, timedelta

import httpx

from activities.providers.http import download_finished, json_of, send
from activities.providers.interfaces import SongJob
from contracts.smol import Song
from contracts.steps import SongStatus
from smol.errors import ProviderError

STATUS = {"starting": SongStatus.SUBMITTED, "processing": SongStatus.GENERATING, "succeeded": SongStatus.COMPLETE}
RIFFUSION_SEED_IMAGES = ("vibes", "og_beat", "agile", "marim", "motorway")
CLOCK_SKEW = timedelta(minutes=2)
MAX_LIST_PAGES = 50
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
            seed_image = RIFFUSION_SEED_IMAGES[(2 * job.submission + variant) % len(RIFFUSION_SEED_IMAGES)]
            return {"prompt_a": text, "denoising": 0.75, "seed_image_id": seed_image, "num_inference_steps": 50}
        chosen = {key: params[key] for key in MUSICGEN_INPUTS if key in params}
        return {"prompt": text, "duration": self.seconds, "output_format": "mp3", "model_version": "stereo-large",
                "seed": (job.seed + 2 * job.submission + variant) % 2**31, **chosen}  # fmt: skip

    async def submit(self, job: SongJob, taken=None) -> list[str]:
        ids: list[str] = []
        for variant in (0, 1):
            body = {"version": self.version, "input": self._input(job, variant)}
            found = await self._created_before(body, job.since, variant, ids, taken)
            ids.append(found or (await self._call("POST", "/predictions", json=body))["id"])
        return ids

    async def _created_before(self, body: dict, since: str | None, variant: int, chosen: list[str],
                              taken) -> str | None:  # fmt: skip
        """A live prediction made earlier for this exact body, not yet anybody else's."""
        oldest = datetime.fromisoformat(since) - CLOCK_SKEW if since else None
        matches: list[str] = []
        url: str | None = f"{self.base_url}/predictions"
        for _ in range(MAX_LIST_PAGES):
            page, url = await self._list_page(url)
            for prediction in page:
                if (prediction.get("version"), prediction.get("input")) == (body["version"], body["input"]) and \
                        prediction.get("status") not in ("failed", "canceled"):  # fmt: skip
                    matches.append(str(prediction["id"]))
            if not url or oldest is None or not page or _created(page[-1]) < oldest:
                break
        candidates = [m for m in matches if m not in chosen]
        if candidates and taken is not None:
            refused = await taken(variant, candidates)
            candidates = [m for m in candidates if m not in refused]
        return candidates[0] if candidates else None

    async def _list_page(self, url: str) -> tuple[list[dict], str | None]:
        """One page of the prediction list (newest first) and the URL of the next, older one."""
        headers = {"Authorization": f"Bearer {self._token}"}
        response = await send(self.http, self.name, "GET", url, headers=headers, secret=self._token)
        data = json_of(response, self.name)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ProviderError(f"{self.name} answered a prediction list without results")
        following = data.get("next")
        if not (isinstance(following, str) and following.startswith(self.base_url + "/")):
            following = None  # never send the token anywhere but the API we were configured with
        return [item for item in results if isinstance(item, dict) and item.get("id")], following

    async def poll(self, song_ids: list[str]) -> list[Song]:
        songs = []
        for prediction_id in song_ids:
            data = await self._call("GET", f"/predictions/{prediction_id}")
            status = data.get("status")
            if status in ("failed", "canceled"):
                refused = "nsfw" in str(data.get("error") or "").lower()
                songs.append(Song(prediction_id, SongStatus.REFUSED if refused else SongStatus.UNAVAILABLE))
                continue
            output = data.get("output")
            if isinstance(output, dict):  # riffusion: {"audio": url, "spectrogram": url}
                output = output.get("audio")
            if isinstance(output, list):
                output = output[0] if output else None
            audio = output if status == "succeeded" else None
            songs.append(Song(prediction_id, STATUS.get(status, SongStatus.SUBMITTED), audio))
        return songs

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes:
        return await download_finished(self, music_id, audio_url)


def _created(prediction: dict) -> datetime:
    """When a prediction was made (its `created_at`); the distant past if it says nothing readable."""
    try:
        created = datetime.fromisoformat(str(prediction.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return created if created.tzinfo else created.replace(tzinfo=UTC)
