"""SQL for mints: requests and their claims on smols, the transactions built for them, and the outcome."""

import asyncpg

from smol.errors import Conflict, NotFound
from smol.repo import visible_to


async def claim(pool: asyncpg.Pool, mint_id: str, address: str, smol_ids: list[str], batch: bool,
                client_xdr: str) -> None:  # fmt: skip
    """Record the request and claim its smols, or raise: NotFound (unknown or not visible to `address`), Conflict
    (already minted, or in another mint). Nothing is written unless every smol can be claimed."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"SELECT s.id, s.mint_token FROM smols s WHERE s.id = ANY($1) AND {visible_to('$2')} FOR UPDATE",
            smol_ids, address,
        )  # fmt: skip
        found = {row["id"]: row for row in rows}
        for smol_id in smol_ids:
            row = found.get(smol_id)
            if row is None:
                raise NotFound(f"smol {smol_id} not found")
            if row["mint_token"]:
                raise Conflict(f"smol {smol_id} is already minted")
        await conn.execute(
            "INSERT INTO mints (id, address, smol_ids, batch, client_xdr) VALUES ($1, $2, $3, $4, $5)",
            mint_id, address, smol_ids, batch, client_xdr,
        )  # fmt: skip
        taken = await conn.fetch(
            "INSERT INTO mint_claims (smol_id, mint_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING "
            "RETURNING smol_id",
            smol_ids, mint_id,
        )  # fmt: skip
        if len(taken) != len(smol_ids):
            busy = sorted(set(smol_ids) - {row["smol_id"] for row in taken})
            raise Conflict(f"smol {busy[0]} is being minted")


async def is_claimed(pool: asyncpg.Pool, smol_id: str) -> bool:
    return bool(await pool.fetchval("SELECT true FROM mint_claims WHERE smol_id = $1", smol_id))


async def forget(pool: asyncpg.Pool, mint_id: str) -> None:
    """Undo a claim whose workflow could not be started."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM mint_claims WHERE mint_id = $1", mint_id)
        await conn.execute("DELETE FROM mints WHERE id = $1", mint_id)


async def get(pool: asyncpg.Pool, mint_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM mints WHERE id = $1", mint_id)
    if row is None:
        raise NotFound(f"mint {mint_id} not found")
    return row


async def set_status(pool: asyncpg.Pool, mint_id: str, status: str, tx_hash: str | None = None) -> None:
    await pool.execute(
        "UPDATE mints SET status = $2, tx_hash = COALESCE($3, tx_hash), updated_at = now() WHERE id = $1",
        mint_id, status, tx_hash,
    )  # fmt: skip


async def minted_elsewhere(pool: asyncpg.Pool, smol_ids: list[str]) -> list[str]:
    return [r["id"] for r in await pool.fetch("SELECT id FROM smols WHERE id = ANY($1) AND mint_token IS NOT NULL",
                                              smol_ids)]  # fmt: skip


async def live_transaction(pool: asyncpg.Pool, mint_id: str) -> asyncpg.Record | None:
    """The mint's newest transaction that may still be (or become) included: signed or sent."""
    return await pool.fetchrow(
        "SELECT * FROM mint_transactions WHERE mint_id = $1 AND state IN ('signed', 'sent') "
        "ORDER BY created_at DESC LIMIT 1",
        mint_id,
    )


async def transaction(pool: asyncpg.Pool, tx_hash: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM mint_transactions WHERE hash = $1", tx_hash)
    if row is None:
        raise NotFound(f"transaction {tx_hash} not found")
    return row


async def save_transaction(pool: asyncpg.Pool, mint_id: str, tx_hash: str, xdr: str, max_ledger: int) -> None:
    await pool.execute(
        "INSERT INTO mint_transactions (hash, mint_id, xdr, max_ledger) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hash) DO NOTHING",
        tx_hash, mint_id, xdr, max_ledger,
    )  # fmt: skip


async def set_transaction_state(pool: asyncpg.Pool, tx_hash: str, state: str) -> None:
    await pool.execute(
        "UPDATE mint_transactions SET state = $2, sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END "
        "WHERE hash = $1",
        tx_hash, state,
    )  # fmt: skip


async def finish(pool: asyncpg.Pool, mint_id: str, results: dict[str, tuple[str, str]], tx_hash: str) -> None:
    """Record each smol's token and AMM, mark the mint done and release its claims, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        for smol_id, (token, amm) in results.items():
            await conn.execute(
                "UPDATE smols SET mint_token = $2, mint_amm = $3 WHERE id = $1 AND mint_token IS NULL",
                smol_id, token, amm,
            )  # fmt: skip
        await conn.execute("UPDATE mint_transactions SET state = 'done' WHERE hash = $1", tx_hash)
        await conn.execute("UPDATE mints SET status = 'minted', updated_at = now() WHERE id = $1", mint_id)
        await conn.execute("DELETE FROM mint_claims WHERE mint_id = $1", mint_id)


async def fail(pool: asyncpg.Pool, mint_id: str, error: str) -> None:
    """The mint ended without tokens: say why and release the smols for another try."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE mints SET status = 'failed', error = $2, updated_at = now() WHERE id = $1",
                           mint_id, error)  # fmt: skip
        await conn.execute("DELETE FROM mint_claims WHERE mint_id = $1", mint_id)
