"""One small interface per kind of AI call; implementations are chosen by settings."""

from dataclasses import dataclass
from typing import Protocol

from workflows.models import Lyrics, Nsfw, Song


class ProviderError(Exception):
    """A provider call failed. `retryable=False` means asking again cannot help (bad input, content policy)."""

    def __init__(self, message: str, *, retryable: bool = True, kind: str = "ProviderError"):
        super().__init__(message)
        self.retryable = retryable
        self.kind = kind


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

    async def submit(self, job: SongJob) -> list[str]:
        """Start two song variants; return their ids. Submitting the same job again returns the same ids."""

    async def poll(self, song_ids: list[str]) -> list[Song]: ...

    async def fetch_audio(self, music_id: str) -> bytes: ...


@dataclass
class Providers:
    image: ImageProvider
    describe: DescribeProvider
    lyrics: LyricsProvider
    nsfw: NsfwProvider
    songs: SongProvider


def build_providers(settings, store) -> Providers:
    """The providers named in settings. Only the offline `local` family exists so far."""
    from activities.providers import local

    return Providers(
        image=local.LocalImage(),
        describe=local.LocalDescribe(),
        lyrics=local.LocalLyrics(),
        nsfw=local.LocalNsfw(),
        songs=local.LocalSongs(
            store=store,
            jobs_root=settings.data_dir / "local-songs",
            seconds=settings.song_seconds,
            delay=settings.local_song_delay,
        ),
    )
