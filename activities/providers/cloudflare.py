"""Cloudflare Workers AI over REST: POST {base}/accounts/{account}/ai/run/{model} with a Bearer token; answers
{"result": ..., "success": true, "errors": []}. Image description (llava), the safety check (llama-guard, JSON
{safe, categories}) and lyrics as a last resort (llama-3.3, JSON {title, lyrics, style[]})."""

import json

import httpx

from activities.providers.http import json_of, send
from contracts.smol import Lyrics, Nsfw
from smol.errors import ProviderError

DESCRIBE_MODEL = "@cf/llava-hf/llava-1.5-7b-hf"
GUARD_MODEL = "@cf/meta/llama-guard-3-8b"
LYRICS_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
LYRICS_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "lyrics": {"type": "string"},
                   "style": {"type": "array", "items": {"type": "string"}}},
    "required": ["title", "lyrics", "style"],
}  # fmt: skip


class WorkersAI:
    name = "cloudflare"

    def __init__(self, http: httpx.AsyncClient, account_id: str, token: str,
                 base_url: str = "https://api.cloudflare.com/client/v4"):  # fmt: skip
        self.http, self._token = http, token
        self.url = f"{base_url.rstrip('/')}/accounts/{account_id}/ai/run/"

    async def run(self, model: str, inputs: dict):
        response = await send(self.http, self.name, "POST", self.url + model, json=inputs,
                              headers={"Authorization": f"Bearer {self._token}"}, secret=self._token)  # fmt: skip
        envelope = json_of(response, self.name)
        if not isinstance(envelope, dict) or not envelope.get("success") or "result" not in envelope:
            raise ProviderError(f"{self.name} {model} answered without a result")
        return envelope["result"]

    async def _json_response(self, model: str, inputs: dict) -> dict:
        answer = (await self.run(model, inputs) or {}).get("response")
        if isinstance(answer, str):
            try:
                answer = json.loads(answer)
            except ValueError:
                raise ProviderError(f"{self.name} {model} answered text, not JSON") from None
        if not isinstance(answer, dict):
            raise ProviderError(f"{self.name} {model} answered without a JSON object")
        return answer

    async def describe(self, prompt: str, png: bytes) -> str:
        result = await self.run(DESCRIBE_MODEL, {
            "image": list(png), "max_tokens": 256,
            "prompt": f"Describe this pixel-art cover for a song about: {prompt[:500]}",
        })  # fmt: skip
        text = (result or {}).get("description")
        if not isinstance(text, str) or not text.strip():
            raise ProviderError(f"{self.name} gave an empty description")
        return text.strip()

    async def check(self, text: str) -> Nsfw:
        answer = await self._json_response(GUARD_MODEL, {
            "messages": [{"role": "user", "content": text[:4000]}], "response_format": {"type": "json_object"},
        })  # fmt: skip
        if not isinstance(answer.get("safe"), bool):
            raise ProviderError(f"{self.name} safety answer has no boolean 'safe'")
        return Nsfw(safe=answer["safe"], categories=[str(c) for c in answer.get("categories") or []])

    async def write(self, prompt: str, description: str, instrumental: bool, seed: int) -> Lyrics:
        task = "Write a song" + (" title and style tags only (no lyrics)" if instrumental else "")
        answer = await self._json_response(LYRICS_MODEL, {
            "messages": [
                {"role": "system", "content": "You write songs. Answer JSON {title, lyrics, style[]}; lyrics in "
                                              "[Verse]/[Chorus] sections; at least two style tags."},
                {"role": "user", "content": f"{task} about: {prompt[:2000]}\nCover: {description[:500]}"},
            ],
            "response_format": {"type": "json_schema", "json_schema": LYRICS_SCHEMA},
        })  # fmt: skip
        try:
            return Lyrics(title=str(answer["title"]), lyrics="" if instrumental else str(answer["lyrics"]),
                          style=[str(tag) for tag in answer["style"]])  # fmt: skip
        except (KeyError, TypeError):
            raise ProviderError(f"{self.name} lyrics answer lacks title, lyrics or style") from None
