"""Small SQL functions over the asyncpg pool: one function per question or change."""

from datetime import datetime, timedelta

import asyncpg

from smol.errors import SongIdTaken

SMOL_COLUMNS = (
    "id, title, song_1, song_2, created_at, public, instrumental, plays, views, address, mint_token, mint_amm, safe"
)


# The one visibility rule: a smol's content (row, prompt, description, lyrics, verdict, cover, songs) is visible to
# its owner, and to others only when it is public and safe. Every read of smols goes through `visible_to` (finished
# smols: SQL) or `visible_in_progress` (a smol without a row yet: its step data); `safe` is kept by schema/008.
def visible_to(viewer: str | None, alias: str = "s") -> str:
    """The rule as SQL over `smols {alias}`, for WHERE clauses: `viewer` is the SQL parameter holding the caller's
    address (e.g. "$2", NULL when anonymous), or None for "anyone" (what public lists show)."""
    anyone = f"({alias}.public AND {alias}.safe)"
    return anyone if viewer is None else f"({anyone} OR {alias}.address = {viewer})"


async def hides_nothing(pool: asyncpg.Pool, viewer: str) -> bool:
    """Whether the viewer owns no smol that only they may see: by the rule above, every read then shows them exactly
    what it shows anyone."""
    return not await pool.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM smols s WHERE s.address = $1 AND NOT {visible_to(None)})", viewer)


def visible_in_progress(kv_do: dict, viewer: str | None) -> bool:
    """The same rule for a smol still being made, from its step data in the `kv_do` shape (`payload`, `nsfw`): asked
    for in public, and already found safe (until the verdict is in, its prompt and what came of it may be unsafe)."""
    payload = kv_do.get("payload") or {}
    if viewer is not None and payload.get("address") == viewer:
        return True
    return payload.get("public") is True and (kv_do.get("nsfw") or {}).get("safe") is True


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


async def start_provider_call(pool: asyncpg.Pool, smol_id: str, step: str, provider: str, run_id: str) -> int:
    """Record a call before it is made; its id."""
    return await pool.fetchval(
        "INSERT INTO provider_calls (smol_id, step, provider, run_id) VALUES ($1, $2, $3, $4) RETURNING id",
        smol_id, step, provider, run_id,
    )  # fmt: skip


async def units_spent(pool: asyncpg.Pool, smol_id: str, step: str, run_id: str, but: int) -> int:
    """Billable requests of this step in this run, in calls other than `but` (a call still running counts one)."""
    return await pool.fetchval(
        "SELECT coalesce(sum(coalesce(units, 1)), 0) FROM provider_calls "
        "WHERE smol_id = $1 AND step = $2 AND run_id = $3 AND id <> $4",
        smol_id, step, run_id, but,
    )  # fmt: skip


async def finish_provider_call(pool: asyncpg.Pool, call_id: int, duration_ms: int, ok: bool, error: str | None,
                               units: int) -> None:  # fmt: skip
    await pool.execute(
        "UPDATE provider_calls SET duration_ms = $2, ok = $3, error = $4, units = $5 WHERE id = $1",
        call_id, duration_ms, ok, error, units,
    )  # fmt: skip


async def paid_calls(pool: asyncpg.Pool, smol_id: str) -> dict[str, int]:
    """What the smol cost so far: the requests each provider may have billed, over every run."""
    rows = await pool.fetch(
        "SELECT provider, sum(coalesce(units, 1)) AS n FROM provider_calls WHERE smol_id = $1 "
        "GROUP BY provider HAVING sum(coalesce(units, 1)) > 0 ORDER BY provider",
        smol_id,
    )
    return {row["provider"]: row["n"] for row in rows}


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


async def visible_smol(pool: asyncpg.Pool, smol_id: str, viewer: str | None) -> asyncpg.Record | None:
    """The smol's row, if the viewer may see it."""
    return await pool.fetchrow(
        f"SELECT {SMOL_COLUMNS} FROM smols s WHERE s.id = $1 AND {visible_to('$2')}", smol_id, viewer
    )


async def smol_page(pool: asyncpg.Pool, smol_id: str, viewer: str | None, count_view: bool) -> dict:
    """What a finished smol's page shows, in one round trip: `stored` (whether the smol has its row at all) and, if
    the viewer may see it (with one more view when `count_view`), its row, `steps` (the saved step data by step),
    `songs` (as `songs_of`), `mint` (the newest, or None) and `liked` (by the viewer); `id` is None when the viewer
    may not see it. Both answers come from one snapshot: a row stored meanwhile is either seen by both or by
    neither, never "stored but not yours"."""
    row = await pool.fetchrow(
        f"""WITH s AS ({
            f"UPDATE smols s SET views = s.views + 1 WHERE s.id = $1 AND {visible_to('$2')} RETURNING {SMOL_COLUMNS}"
            if count_view else f"SELECT {SMOL_COLUMNS} FROM smols s WHERE s.id = $1 AND {visible_to('$2')}"})
        SELECT s.*, EXISTS (SELECT 1 FROM smols WHERE id = $1) AS stored,
            (SELECT coalesce(jsonb_object_agg(step, data), '{{}}') FROM smol_steps WHERE smol_id = s.id) AS steps,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('music_id', music_id, 'variant', variant,
                    'provider', provider, 'status', status, 'object_key', object_key) ORDER BY variant), '[]')
                FROM smol_songs WHERE smol_id = s.id) AS songs,
            (SELECT to_jsonb(m) FROM (SELECT id, status, tx_hash, error FROM mints WHERE s.id = ANY(smol_ids)
                ORDER BY created_at DESC LIMIT 1) m) AS mint,
            EXISTS (SELECT 1 FROM likes WHERE id = s.id AND address = $2) AS liked
        FROM (SELECT) AS one LEFT JOIN s ON true""",
        smol_id, viewer,
    )  # fmt: skip
    return dict(row)


async def media_access(pool: asyncpg.Pool, viewer: str | None, *, smol_id: str | None = None,
                       music_id: str | None = None) -> str | None:  # fmt: skip
    """How `viewer` may get a smol's cover (`smol_id`) or song (`music_id`): "public" (a finished smol anyone may
    see: shared caches may keep it), "private" (only this viewer: the owner, or a smol still being made, which may
    yet be flagged), None (not at all, or no such smol)."""
    if music_id is not None:  # the song's smol: by its row, else (still being made) by the song's record
        smol_id = await pool.fetchval(
            "SELECT coalesce((SELECT id FROM smols WHERE song_1 = $1 OR song_2 = $1 LIMIT 1), "
            "(SELECT smol_id FROM smol_songs WHERE music_id = $1))",
            music_id,
        )
        if smol_id is None:
            return None
    row = await pool.fetchrow(
        f"SELECT {visible_to(None)} AS anyone, {visible_to('$2')} AS viewer FROM smols s WHERE s.id = $1",
        smol_id, viewer,
    )  # fmt: skip
    if row is not None:
        return "public" if row["anyone"] else "private" if row["viewer"] else None
    steps = await load_steps(pool, smol_id)
    in_progress = {"payload": steps.get("payload"), "nsfw": (steps.get("nsfw") or {}).get("value")}
    return "private" if steps and visible_in_progress(in_progress, viewer) else None


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
    return await _page_of(pool, "smols s", visible_to(None), [], limit, after)


async def list_created(pool, address: str, limit: int, after=None) -> list[asyncpg.Record]:
    return await _page_of(pool, "smols s", "s.address = $1", [address], limit, after)


async def list_liked(pool, address: str, limit: int, after=None) -> list[asyncpg.Record]:
    source = "smols s JOIN likes l ON l.id = s.id"
    return await _page_of(pool, source, f"l.address = $1 AND {visible_to('$1')}", [address], limit, after)


async def list_playlist(pool, title: str, limit: int, after=None) -> list[asyncpg.Record]:
    source = "smols s JOIN playlists p ON p.id = s.id"
    return await _page_of(pool, source, f"p.title = $1 AND {visible_to(None)}", [title], limit, after)


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


async def was_deleted(pool: asyncpg.Pool, smol_id: str) -> bool:
    """Whether the smol was deleted (or discarded): its workflow history may still be there for a while."""
    return bool(await pool.fetchval("SELECT true FROM deleted_smols WHERE id = $1", smol_id))


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
        await conn.execute("INSERT INTO deleted_smols (id) VALUES ($1) ON CONFLICT DO NOTHING", smol_id)
    return keys + ([image] if image else [])


LONGEST_SLOT_WINDOW = timedelta(days=1)  # counted rows older than this count for no window: they are removed


async def take_create_slot(pool: asyncpg.Pool, address: str, limit: int, window_seconds: float) -> float | None:
    """Count one creation for `address` (a kind of thing and who: `mint:G…`) if it made fewer than `limit` in the
    window (at most `LONGEST_SLOT_WINDOW`); else the seconds to wait."""
    if timedelta(seconds=window_seconds) > LONGEST_SLOT_WINDOW:
        raise ValueError(f"a create window of {window_seconds} s is longer than the rows are kept")
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
        # (and a few rows past every kind's window, of addresses that did not come back: nothing else removes them;
        # rows another create is removing are left to it, so two never wait on each other)
        await conn.execute(
            "DELETE FROM create_requests WHERE ctid = ANY(ARRAY(SELECT ctid FROM create_requests "
            "WHERE created_at < clock_timestamp() - $1::interval LIMIT 100 FOR UPDATE SKIP LOCKED))",
            LONGEST_SLOT_WINDOW,
        )  # fmt: skip
        return None


async def give_back_create_slot(pool: asyncpg.Pool, address: str) -> None:
    """Uncount the newest creation counted for `address` (`take_create_slot`): what it was for did not happen."""
    await pool.execute(
        "DELETE FROM create_requests WHERE ctid = (SELECT ctid FROM create_requests WHERE address = $1 "
        "ORDER BY created_at DESC LIMIT 1)", address,
    )  # fmt: skip


async def songs_taken(pool: asyncpg.Pool, smol_id: str, variant: int, music_ids: list[str]) -> set[str]:
    """Those of `music_ids` another smol, or another variant of this one, already recorded as its song."""
    rows = await pool.fetch(
        "SELECT music_id FROM smol_songs WHERE music_id = ANY($1::text[]) AND (smol_id <> $2 OR variant <> $3)",
        music_ids, smol_id, variant,
    )  # fmt: skip
    return {row["music_id"] for row in rows}


async def first_call_at(pool: asyncpg.Pool, smol_id: str, step: str) -> datetime | None:
    """When a provider was first asked for this step of the smol, in any run."""
    return await pool.fetchval(
        "SELECT min(started_at) FROM provider_calls WHERE smol_id = $1 AND step = $2", smol_id, step
    )
