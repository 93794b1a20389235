"""The layout of `smol_steps`: one row per finished step of a smol, whose JSON is written and read only here."""

from dataclasses import asdict

import asyncpg

from contracts.smol import LoadStepsResult, Lyrics, Nsfw, Payload, Song
from contracts.steps import SongStatus
from smol import repo


async def save_payload(pool: asyncpg.Pool, smol_id: str, payload: Payload) -> None:
    await repo.save_step(pool, smol_id, "payload", asdict(payload))


async def save_image(pool: asyncpg.Pool, smol_id: str, key: str, provider: str) -> None:
    await repo.save_step(pool, smol_id, "image", {"key": key, "provider": provider})


async def save_description(pool: asyncpg.Pool, smol_id: str, text: str, provider: str) -> None:
    await repo.save_step(pool, smol_id, "description", {"text": text, "provider": provider})


async def save_lyrics(pool: asyncpg.Pool, smol_id: str, lyrics: Lyrics, provider: str) -> None:
    await repo.save_step(pool, smol_id, "lyrics", {"value": asdict(lyrics), "provider": provider})


async def save_nsfw(pool: asyncpg.Pool, smol_id: str, nsfw: Nsfw, provider: str) -> None:
    await repo.save_step(pool, smol_id, "nsfw", {"value": asdict(nsfw), "provider": provider})


async def save_song_ids(pool: asyncpg.Pool, smol_id: str, ids: list[str], provider: str, submission: int) -> None:
    await repo.save_step(pool, smol_id, "song_ids", {"ids": ids, "provider": provider, "submission": submission})


def read(steps: dict) -> LoadStepsResult:
    """The saved steps (`repo.load_steps`) as typed values, exactly as saved."""
    payload, lyrics, nsfw = steps.get("payload"), steps.get("lyrics"), steps.get("nsfw")
    submitted = steps.get("song_ids") or {}
    return LoadStepsResult(
        payload=Payload(**payload) if payload else None,
        image_key=(steps.get("image") or {}).get("key"),
        description=(steps.get("description") or {}).get("text"),
        lyrics=Lyrics(**lyrics["value"]) if lyrics else None,
        nsfw=Nsfw(**nsfw["value"]) if nsfw else None,
        song_ids=submitted.get("ids"),
        song_provider=submitted.get("provider"),
        song_submission=submitted.get("submission", 0),
    )


async def load(pool: asyncpg.Pool, smol_id: str) -> LoadStepsResult:
    return read(await repo.load_steps(pool, smol_id))


async def load_many(pool: asyncpg.Pool, smol_ids: list[str]) -> dict[str, LoadStepsResult]:
    """The saved steps of several smols at once (lists); a smol with none saved is absent."""
    rows = await pool.fetch("SELECT smol_id, step, data FROM smol_steps WHERE smol_id = ANY($1::text[])", smol_ids)
    saved: dict[str, dict] = {}
    for row in rows:
        saved.setdefault(row["smol_id"], {})[row["step"]] = row["data"]
    return {smol_id: read(data) for smol_id, data in saved.items()}


def songs_from(rows) -> list[Song]:
    """Song rows (`repo.songs_of`) as clients see them: archived songs play from our media route."""
    return [Song(r["music_id"], r["status"], f"/song/{r['music_id']}.mp3" if r["object_key"] else None) for r in rows]


def failed_songs(rows) -> set[str]:
    return {r["music_id"] for r in rows if r["status"] < SongStatus.QUEUED}
