"""Small SQL functions over the asyncpg pool: one function per question or change."""

from datetime import datetime, timedelta

import asyncpg

from smol.errors import Conflict

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
                    status: int, object_key: str | None = None, audio_url: str | None = None) -> None:  # fmt: skip
    """Insert or update a song; `progressed_at` moves only when its status or audio changed. A song id that
    already belongs to another smol is refused (SongIdTaken), never overwritten."""
    saved = await pool.fetchval(
        "INSERT INTO smol_songs (music_id, smol_id, variant, provider, status, object_key, audio_url) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (music_id) DO UPDATE SET status = EXCLUDED.status, "
        "object_key = COALESCE(EXCLUDED.object_key, smol_songs.object_key), "
        "audio_url = COALESCE(EXCLUDED.audio_url, smol_songs.audio_url), updated_at = now(), "
        "progressed_at = CASE WHEN (smol_songs.status, smol_songs.audio_url) IS DISTINCT FROM "
        "(EXCLUDED.status, COALESCE(EXCLUDED.audio_url, smol_songs.audio_url)) THEN now() "
        "ELSE smol_songs.progressed_at END "
        "WHERE smol_songs.smol_id = EXCLUDED.smol_id RETURNING true",
        music_id, smol_id, variant, provider, status, object_key, audio_url,
    )  # fmt: skip
    if not saved:
        raise SongIdTaken(f"song id {music_id!r} from {provider} already belongs to another smol")


class SongIdTaken(Conflict):
    pass


async def seconds_since_song_progress(pool: asyncpg.Pool, music_ids: list[str]) -> float:
    """How long since any of these songs last changed (0 when none is known yet)."""
    value = await pool.fetchval(
        "SELECT extract(epoch FROM now() - max(progressed_at)) FROM smol_songs WHERE music_id = ANY($1)", music_ids
    )
    return float(value or 0)


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


async def get_smol(pool: asyncpg.Pool, smol_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {SMOL_COLUMNS} FROM smols WHERE id = $1", smol_id)


async def view_smol(pool: asyncpg.Pool, smol_id: str, viewer: str | None) -> asyncpg.Record | None:
    """The smol's row with one more view, if the viewer may see it (public, or theirs)."""
    return await pool.fetchrow(
        f"UPDATE smols SET views = views + 1 WHERE id = $1 AND (public OR address = $2) RETURNING {SMOL_COLUMNS}",
        smol_id, viewer,
    )  # fmt: skip


async def is_liked(pool: asyncpg.Pool, smol_id: str, address: str | None) -> bool:
    if not address:
        return False
    return bool(await pool.fetchval("SELECT true FROM likes WHERE id = $1 AND address = $2", smol_id, address))


LIST_COLUMNS = "s.id, s.title, s.song_1, s.mint_token, s.mint_amm, s.created_at, s.address, s.plays, s.views"


async def _page_of(pool: asyncpg.Pool, source: str, condition: str, args: list, limit: int,
                   after: tuple[datetime, str] | None) -> list[asyncpg.Record]:  # fmt: skip
    """Smols newest first, strictly after the keyset cursor `(created_at, id)`. `source` names `smols s`."""
    args = list(args)
    keyset = ""
    if after is not None:
        args += [after[0], after[1]]
        keyset = f" AND (s.created_at, s.id) < (${len(args) - 1}, ${len(args)})"
    args.append(limit)
    query = (
        f"SELECT {LIST_COLUMNS} FROM {source} WHERE {condition}{keyset} "
        f"ORDER BY s.created_at DESC, s.id DESC LIMIT ${len(args)}"
    )
    return await pool.fetch(query, *args)


async def list_public(pool, limit: int, after=None) -> list[asyncpg.Record]:
    return await _page_of(pool, "smols s", "s.public", [], limit, after)


async def list_created(pool, address: str, limit: int, after=None) -> list[asyncpg.Record]:
    return await _page_of(pool, "smols s", "s.address = $1", [address], limit, after)


async def list_liked(pool, address: str, limit: int, after=None) -> list[asyncpg.Record]:
    source = "smols s JOIN likes l ON l.id = s.id"
    return await _page_of(pool, source, "l.address = $1 AND (s.public OR s.address = $1)", [address], limit, after)


async def list_playlist(pool, title: str, limit: int, after=None) -> list[asyncpg.Record]:
    source = "smols s JOIN playlists p ON p.id = s.id"
    return await _page_of(pool, source, "p.title = $1 AND s.public", [title], limit, after)


async def count_play(pool: asyncpg.Pool, music_id: str) -> None:
    await pool.execute("UPDATE smols SET plays = plays + 1 WHERE song_1 = $1 OR song_2 = $1", music_id)


async def smol_owner(pool: asyncpg.Pool, smol_id: str) -> str | None:
    """Who made the smol: its row's address, else the address in its saved payload (a smol still in the works)."""
    return await pool.fetchval(
        "SELECT coalesce((SELECT address FROM smols WHERE id = $1), "
        "(SELECT data->>'address' FROM smol_steps WHERE smol_id = $1 AND step = 'payload'))",
        smol_id,
    )


async def toggle_public(pool: asyncpg.Pool, smol_id: str, address: str) -> bool | None:
    """Flip `public` on the caller's smol; None if there is no such smol of theirs."""
    return await pool.fetchval(
        "UPDATE smols SET public = NOT public WHERE id = $1 AND address = $2 RETURNING public", smol_id, address
    )


async def is_flagged(pool: asyncpg.Pool, smol_id: str) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT (data->'value'->>'safe')::boolean = false FROM smol_steps WHERE smol_id = $1 AND step = 'nsfw'",
            smol_id,
        )
    )


async def swap_songs(pool: asyncpg.Pool, smol_id: str, song_id: str, address: str) -> bool:
    """Make `song_id` (now Song_2) the first song of the caller's smol."""
    return bool(
        await pool.fetchval(
            "UPDATE smols SET song_1 = song_2, song_2 = song_1 WHERE id = $1 AND address = $2 AND song_2 = $3 "
            "RETURNING true",
            smol_id,
            address,
            song_id,
        )  # fmt: skip
    )


async def delete_smol(pool: asyncpg.Pool, smol_id: str) -> list[str]:
    """Remove every row about the smol in one transaction; return the object keys it had."""
    async with pool.acquire() as conn, conn.transaction():
        keys = [
            r["object_key"]
            for r in await conn.fetch(
                "SELECT object_key FROM smol_songs WHERE smol_id = $1 AND object_key IS NOT NULL", smol_id
            )
        ]
        image = await conn.fetchval(
            "SELECT data->>'key' FROM smol_steps WHERE smol_id = $1 AND step = 'image'", smol_id
        )
        await conn.execute("DELETE FROM smols WHERE id = $1", smol_id)
        await conn.execute("DELETE FROM likes WHERE id = $1", smol_id)
        await conn.execute("DELETE FROM playlists WHERE id = $1", smol_id)
        await conn.execute("UPDATE mixtapes SET smols = array_remove(smols, $1) WHERE $1 = ANY(smols)", smol_id)
        await conn.execute("DELETE FROM smol_songs WHERE smol_id = $1", smol_id)
        await conn.execute("DELETE FROM smol_steps WHERE smol_id = $1", smol_id)
        await conn.execute("DELETE FROM provider_calls WHERE smol_id = $1", smol_id)
    return keys + ([image] if image else [])


async def take_create_slot(pool: asyncpg.Pool, address: str, limit: int, window_seconds: float) -> float | None:
    """Count one creation for `address` if it made fewer than `limit` in the window; else the seconds to wait."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('create:' || $1))", address)
        window = timedelta(seconds=window_seconds)
        await conn.execute(
            "DELETE FROM create_requests WHERE address = $1 AND created_at < clock_timestamp() - $2::interval",
            address, window,
        )  # fmt: skip
        count, wait = await conn.fetchrow(
            "SELECT count(*), extract(epoch FROM min(created_at) + $2::interval - clock_timestamp()) "
            "FROM create_requests WHERE address = $1",
            address, window,
        )  # fmt: skip
        if count >= limit:
            return max(float(wait or 0), 0.0)
        await conn.execute("INSERT INTO create_requests (address) VALUES ($1)", address)
        return None
