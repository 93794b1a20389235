"""One small interface per kind of AI call (implemented by the adapters in this package, chosen by registry.py)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from contracts.smol import Lyrics, Nsfw, Song


@dataclass
class SongJob:
    smol_id: str
    submission: int  # 0 for the first submission of this smol; a resubmission gets new song ids
    title: str
    lyrics: str
    style: list[str]
    instrumental: bool
    prompt: str
    description: str
    artist: str
    image_key: str
    seed: int
    params: dict | None = None  # model parameters the creator chose (duration, temperature, …)
    since: str | None = None  # ISO time the step was first tried: how far back a lost submission is looked for


Taken = Callable[[int, list[str]], Awaitable[set[str]]]


class ImageProvider(Protocol):
    name: str

    async def generate(self, prompt: str, seed: int) -> bytes:
        """Return a 64×64 PNG."""


class DescribeProvider(Protocol):
    name: str

    async def describe(self, prompt: str, png: bytes) -> str: ...


class LyricsProvider(Protocol):
    name: str

    async def write(self, prompt: str, description: str, instrumental: bool, seed: int) -> Lyrics: ...


class NsfwProvider(Protocol):
    name: str

    async def check(self, text: str) -> Nsfw: ...


class SongProvider(Protocol):
    name: str

    async def submit(self, job: SongJob, taken: Taken | None = None) -> list[str]:
        """Start two song variants; return their ids. Submitting the same job again returns the same ids.
        A provider that finds a lost submission again by looking (not by an idempotency key) adopts a song only if
        `taken(variant, [ids])` does not name it (another smol's, or another variant's)."""

    async def poll(self, song_ids: list[str]) -> list[Song]: ...

    async def fetch_audio(self, music_id: str, audio_url: str | None = None) -> bytes: ...


@dataclass
class Providers:
    """One fallback chain (or a single provider, in tests) per kind of call."""

    image: ImageProvider
    describe: DescribeProvider
    lyrics: LyricsProvider
    nsfw: NsfwProvider
    songs: SongProvider


