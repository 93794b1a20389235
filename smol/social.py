"""Likes, playlist members and mixtapes: small SQL functions over the pool."""

import asyncpg

from smol.repo import visible_to


async def liked_ids(pool: asyncpg.Pool, address: str) -> list[str]:
    """The smols the address liked that it may still see (one made private or flagged since drops out, as from
    `GET /liked`: a like of it can still be undone)."""
    rows = await pool.fetch(
        f"SELECT l.id FROM likes l JOIN smols s ON s.id = l.id WHERE l.address = $1 AND {visible_to('$1')} "
        "ORDER BY l.created_at DESC, l.id", address,
    )  # fmt: skip
    return [r["id"] for r in rows]


async def toggle_like(pool: asyncpg.Pool, smol_id: str, address: str) -> bool:
    """Like or unlike; returns whether it is liked now."""
    async with pool.acquire() as conn, conn.transaction():
        removed = await conn.fetchval(
            "DELETE FROM likes WHERE id = $1 AND address = $2 RETURNING true", smol_id, address
        )
        if removed:
            return False
        await conn.execute("INSERT INTO likes (id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING", smol_id, address)
        return True


async def users_for(pool: asyncpg.Pool, addresses: list[str]) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT username, address FROM users WHERE address = ANY($1::text[]) ORDER BY username", addresses
    )


MIXTAPE_COLUMNS = 'id, title, "desc", smols, address, created_at'


async def create_mixtape(pool: asyncpg.Pool, mixtape_id: str, title: str, desc: str, smols: list[str], address: str):
    await pool.execute(
        'INSERT INTO mixtapes (id, title, "desc", smols, address) VALUES ($1, $2, $3, $4, $5)',
        mixtape_id, title, desc, smols, address,
    )  # fmt: skip


async def list_mixtapes(pool: asyncpg.Pool, viewer: str | None, limit: int = 100) -> list[asyncpg.Record]:
    """The newest mixtapes, each listing only the smols the viewer may see, in its order."""
    return await pool.fetch(
        'SELECT m.id, m.title, m."desc", m.address, m.created_at, '
        "array(SELECT s.id FROM unnest(m.smols) WITH ORDINALITY AS x(id, position) JOIN smols s ON s.id = x.id "
        f"WHERE {visible_to('$2')} ORDER BY x.position) AS smols "
        "FROM mixtapes m ORDER BY m.created_at DESC, m.id DESC LIMIT $1",
        limit, viewer,
    )  # fmt: skip


async def get_mixtape(pool: asyncpg.Pool, mixtape_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {MIXTAPE_COLUMNS} FROM mixtapes WHERE id = $1", mixtape_id)


async def mixtape_tracks(pool: asyncpg.Pool, smol_ids: list[str], viewer: str | None) -> list[asyncpg.Record]:
    """The smols of a mixtape in its order, leaving out deleted ones and private ones of others."""
    return await pool.fetch(
        "SELECT s.id, s.title, s.address, s.mint_token, s.mint_amm, s.song_1, "
        "coalesce(st.data->'value'->'style', '[]'::jsonb) AS tags "
        "FROM unnest($1::text[]) WITH ORDINALITY AS m(id, position) JOIN smols s ON s.id = m.id "
        "LEFT JOIN smol_steps st ON st.smol_id = s.id AND st.step = 'lyrics' "
        f"WHERE {visible_to('$2')} ORDER BY m.position",
        smol_ids, viewer,
    )  # fmt: skip


async def update_mixtape(pool, mixtape_id: str, address: str, title: str, desc: str, smols: list[str]) -> bool:
    return bool(
        await pool.fetchval(
            'UPDATE mixtapes SET title = $3, "desc" = $4, smols = $5 WHERE id = $1 AND address = $2 RETURNING true',
            mixtape_id,
            address,
            title,
            desc,
            smols,
        )  # fmt: skip
    )


async def delete_mixtape(pool: asyncpg.Pool, mixtape_id: str, address: str) -> bool:
    return bool(
        await pool.fetchval("DELETE FROM mixtapes WHERE id = $1 AND address = $2 RETURNING true", mixtape_id, address)
    )


async def existing_smols(pool: asyncpg.Pool, smol_ids: list[str], viewer: str) -> set[str]:
    rows = await pool.fetch(
        f"SELECT s.id FROM smols s WHERE s.id = ANY($1::text[]) AND {visible_to('$2')}", smol_ids, viewer
    )
    return {r["id"] for r in rows}
