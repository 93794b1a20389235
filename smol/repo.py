"""Small SQL functions over the asyncpg pool: one function per question or change."""

from datetime import datetime

import asyncpg

SMOL_COLUMNS = (
    "id, title, song_1, song_2, created_at, public, instrumental, plays, views, address, mint_token, mint_amm"
)


async def save_step(pool: asyncpg.Pool, smol_id: str, step: str, data) -> None:
    await pool.execute(
        "INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, $2, $3) "
        "ON CONFLICT (smol_id, step) DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
        smol_id, step, data,
    )  # fmt: skip


async def load_steps(pool: asyncpg.Pool, smol_id: str) -> dict:
    rows = await pool.fetch("SELECT step, data FROM smol_steps WHERE smol_id = $1", smol_id)
    return {row["step"]: row["data"] for row in rows}


async def save_song(pool: asyncpg.Pool, smol_id: str, music_id: str, variant: int, provider: str,
                    status: int, object_key: str | None = None) -> None:  # fmt: skip
    await pool.execute(
        "INSERT INTO smol_songs (music_id, smol_id, variant, provider, status, object_key) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (music_id) DO UPDATE SET status = EXCLUDED.status, "
        "object_key = COALESCE(EXCLUDED.object_key, smol_songs.object_key), updated_at = now()",
        music_id, smol_id, variant, provider, status, object_key,
    )  # fmt: skip


async def songs_of(pool: asyncpg.Pool, smol_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT music_id, variant, provider, status, object_key FROM smol_songs WHERE smol_id = $1 ORDER BY variant",
        smol_id,
    )


async def song_object(pool: asyncpg.Pool, music_id: str) -> str | None:
    return await pool.fetchval("SELECT object_key FROM smol_songs WHERE music_id = $1", music_id)


async def record_provider_call(pool: asyncpg.Pool, smol_id: str, step: str, provider: str,
                               duration_ms: int, ok: bool, error: str | None) -> None:  # fmt: skip
    await pool.execute(
        "INSERT INTO provider_calls (smol_id, step, provider, duration_ms, ok, error) VALUES ($1, $2, $3, $4, $5, $6)",
        smol_id, step, provider, duration_ms, ok, error,
    )  # fmt: skip


async def provider_call_counts(pool: asyncpg.Pool, smol_id: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT step, count(*) AS n FROM provider_calls WHERE smol_id = $1 AND ok GROUP BY step", smol_id
    )
    return {row["step"]: row["n"] for row in rows}


async def insert_smol(conn: asyncpg.Connection, *, smol_id: str, title: str, song_1: str, song_2: str,
                      public: bool, instrumental: bool, address: str, playlist: str | None) -> bool:  # fmt: skip
    """Insert the finished smol (and its playlist entry) in one transaction; False if it already existed."""
    async with conn.transaction():
        created = await conn.fetchval(
            "INSERT INTO smols (id, title, song_1, song_2, public, instrumental, address) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING true",
            smol_id, title, song_1, song_2, public, instrumental, address,
        )  # fmt: skip
        if created and playlist:
            await conn.execute(
                "INSERT INTO playlists (title, id) VALUES ($1, $2) ON CONFLICT DO NOTHING", playlist, smol_id
            )
    return bool(created)


async def get_smol(pool: asyncpg.Pool, smol_id: str, count_view: bool = False) -> asyncpg.Record | None:
    if count_view:
        return await pool.fetchrow(
            f"UPDATE smols SET views = views + 1 WHERE id = $1 RETURNING {SMOL_COLUMNS}", smol_id
        )
    return await pool.fetchrow(f"SELECT {SMOL_COLUMNS} FROM smols WHERE id = $1", smol_id)


async def is_liked(pool: asyncpg.Pool, smol_id: str, address: str | None) -> bool:
    if not address:
        return False
    return bool(await pool.fetchval("SELECT true FROM likes WHERE id = $1 AND address = $2", smol_id, address))


async def list_public(pool: asyncpg.Pool, limit: int, after: tuple[datetime, str] | None) -> list[asyncpg.Record]:
    """Public smols newest first, strictly after the keyset cursor `(created_at, id)`."""
    columns = "id, title, song_1, mint_token, mint_amm, created_at"
    if after is None:
        return await pool.fetch(
            f"SELECT {columns} FROM smols WHERE public ORDER BY created_at DESC, id DESC LIMIT $1", limit
        )
    return await pool.fetch(
        f"SELECT {columns} FROM smols WHERE public AND (created_at, id) < ($2, $3) "
        "ORDER BY created_at DESC, id DESC LIMIT $1",
        limit, after[0], after[1],
    )  # fmt: skip


async def count_play(pool: asyncpg.Pool, music_id: str) -> None:
    await pool.execute("UPDATE smols SET plays = plays + 1 WHERE song_1 = $1 OR song_2 = $1", music_id)
