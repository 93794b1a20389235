"""Stored passkeys and spent WebAuthn challenges."""

import asyncpg

from smol.errors import Conflict, Unauthorized

ADDRESS_BOUND = "this address is already bound to another passkey"


async def spend_challenge(pool: asyncpg.Pool | asyncpg.Connection, challenge: str) -> bool:
    """Mark a challenge used; False if it already was (a replay)."""
    return bool(
        await pool.fetchval(
            "INSERT INTO used_challenges (challenge) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", challenge
        )
    )


async def register(pool: asyncpg.Pool, *, challenge: str, credential_id: str, address: str, username: str,
                   public_key: bytes, sign_count: int) -> None:  # fmt: skip
    """Spend the challenge and bind the credential to its (proven) address, all or nothing."""
    async with pool.acquire() as conn, conn.transaction():
        if not await spend_challenge(conn, challenge):
            raise Unauthorized("this registration was already used")
        # A row from before 007 (unproven) binding this address to another credential was planted through the old
        # hole: a wallet address derives from one credential id only. It can never log in; it must not lock out the
        # owner either.
        await conn.execute(
            "DELETE FROM passkeys WHERE address = $1 AND credential_id <> $2 AND NOT address_proven",
            address, credential_id,
        )  # fmt: skip
        try:
            await conn.execute(
                "INSERT INTO passkeys (credential_id, address, username, public_key, sign_count, address_proven) "
                "VALUES ($1, $2, $3, $4, $5, true)",
                credential_id, address, username, public_key, sign_count,
            )  # fmt: skip
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "passkeys_proven_address":
                raise Conflict(ADDRESS_BOUND) from None
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
