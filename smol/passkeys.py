"""Stored passkeys and spent WebAuthn challenges."""

import asyncpg

from smol.errors import Conflict


async def spend_challenge(pool: asyncpg.Pool, challenge: str) -> bool:
    """Mark a challenge used; False if it already was (a replay)."""
    return bool(
        await pool.fetchval(
            "INSERT INTO used_challenges (challenge) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", challenge
        )
    )


async def register(pool: asyncpg.Pool, *, credential_id: str, address: str, username: str, public_key: bytes,
                   sign_count: int) -> None:  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        try:
            await conn.execute(
                "INSERT INTO passkeys (credential_id, address, username, public_key, sign_count) "
                "VALUES ($1, $2, $3, $4, $5)",
                credential_id, address, username, public_key, sign_count,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise Conflict("this passkey is already registered") from None
        if username:
            await conn.execute(
                "INSERT INTO users (username, address) VALUES ($1, $2) ON CONFLICT DO NOTHING", username, address
            )


async def find(pool: asyncpg.Pool, credential_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT credential_id, address, username, public_key, sign_count FROM passkeys WHERE credential_id = $1",
        credential_id,
    )


async def advance_counter(pool: asyncpg.Pool, credential_id: str, seen: int, new: int) -> bool:
    """Store the new signature counter, unless another login moved it meanwhile."""
    return bool(
        await pool.fetchval(
            "UPDATE passkeys SET sign_count = $3, last_used_at = now() "
            "WHERE credential_id = $1 AND sign_count = $2 RETURNING true",
            credential_id,
            seen,
            new,
        )  # fmt: skip
    )
