"""Offline providers: real output, no network, no keys, deterministic for a prompt and seed."""

import asyncio

from activities.providers.local.describe import describe_png
from activities.providers.local.image import draw_png
from activities.providers.local.lyrics import write_lyrics
from activities.providers.local.nsfw import check_text
from activities.providers.local.songs import LocalSongs
from contracts.smol import Lyrics, Nsfw

__all__ = ["LocalImage", "LocalDescribe", "LocalLyrics", "LocalNsfw", "LocalSongs"]


class LocalImage:
    name = "local"

    async def generate(self, prompt: str, seed: int) -> bytes:
        return await asyncio.to_thread(draw_png, prompt, seed)


class LocalDescribe:
    name = "local"

    async def describe(self, prompt: str, png: bytes) -> str:
        return await asyncio.to_thread(describe_png, prompt, png)


class LocalLyrics:
    name = "local"

    async def write(self, prompt: str, description: str, instrumental: bool, seed: int) -> Lyrics:
        return write_lyrics(prompt, description, instrumental, seed)


class LocalNsfw:
    name = "local"

    async def check(self, text: str) -> Nsfw:
        return check_text(text)
