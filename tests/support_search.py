"""A search corpus for the tests and the benchmark: smols inserted as rows (with their saved steps, as the pipeline
leaves them), songs synthesised by the local provider and archived in the object store, and the index activities
run on them."""

import secrets
from dataclasses import dataclass, field

import asyncpg

from activities.indexing import IndexActivities
from activities.providers.local.music import encode_mp3, plan, render
from activities.providers.local.vocab import stable_seed
from contracts.search import AnalyzeSmolInput, IndexSmolInput
from smol.ids import song_key

SONG_SECONDS = 8


@dataclass
class Seed:
    title: str
    style: list[str]
    lyrics: str = ""
    description: str = ""
    prompt: str = "make me a song"
    address: str = "GSEARCHOWNER"
    public: bool = True
    safe: bool = True
    instrumental: bool = False
    songs: bool = True  # synthesise and archive two songs
    seconds: float = SONG_SECONDS
    smol_id: str = field(default_factory=lambda: secrets.token_hex(32))


def song_mp3(style: list[str], seed: int, variant: int, seconds: float = SONG_SECONDS) -> bytes:
    arrangement = plan(style, seed)
    return encode_mp3(render(arrangement, seconds, variant, seed), title="t", artist="a", arrangement=arrangement,
                      cover_png=None)  # fmt: skip


async def insert(pool: asyncpg.Pool, store, seed: Seed) -> str:
    """The smol as `store_results` leaves it: steps saved, songs archived, row written."""
    payload = {"address": seed.address, "prompt": seed.prompt, "public": seed.public,
               "instrumental": seed.instrumental}  # fmt: skip
    steps = {
        "payload": payload,
        "description": {"text": seed.description, "provider": "local"},
        "lyrics": {"value": {"title": seed.title, "lyrics": seed.lyrics, "style": seed.style}, "provider": "local"},
        "nsfw": {"value": {"safe": seed.safe, "categories": [] if seed.safe else ["test"]}, "provider": "local"},
    }
    for step, data in steps.items():
        await pool.execute("INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, $2, $3)", seed.smol_id, step, data)
    music = [f"{seed.smol_id[:12]}-{variant}" for variant in (0, 1)]
    if seed.songs:
        number = stable_seed(seed.smol_id)
        for variant, music_id in enumerate(music):
            await store.put(song_key(music_id), song_mp3(seed.style, number, variant, seed.seconds), "audio/mpeg")
            await pool.execute(
                "INSERT INTO smol_songs (music_id, smol_id, variant, provider, status, object_key) "
                "VALUES ($1, $2, $3, 'local', 4, $4)",
                music_id, seed.smol_id, variant, song_key(music_id),
            )  # fmt: skip
    await pool.execute(
        "INSERT INTO smols (id, title, song_1, song_2, public, instrumental, address) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        seed.smol_id, seed.title, music[0], music[1], seed.public, seed.instrumental, seed.address,
    )  # fmt: skip
    return seed.smol_id


async def index(pool: asyncpg.Pool, store, smol_id: str) -> bool:
    """Run the two indexing steps on a smol, as SmolWorkflow does after `store_results`."""
    activities = IndexActivities(pool, store)
    analysis = await activities.analyze_smol(AnalyzeSmolInput(smol_id=smol_id))
    return (await activities.index_smol(IndexSmolInput(smol_id=smol_id, songs=analysis.songs))).indexed
