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
                   public_key: bytes, sign_count: int, on_chain: bool) -> int:  # fmt: skip
    """Spend the challenge and bind the credential to its (derived) address, all or nothing; the binding's generation.
    A binding `on_chain` (the deployed wallet's signer holds this key) replaces one that was not: the next
    generation, so the session tokens of the one replaced stop working."""
    async with pool.acquire() as conn, conn.transaction():
        if not await spend_challenge(conn, challenge):
            raise Unauthorized("this registration was already used")
        replaced = await conn.fetchval(
            "DELETE FROM passkeys WHERE credential_id = $1 AND NOT on_chain RETURNING generation", credential_id
        ) if on_chain else None  # fmt: skip
        generation = 0 if replaced is None else replaced + 1
        # A row from before 007 (unproven) binding this address to another credential was planted through the old
        # hole: a wallet address derives from one credential id only. It can never log in; it must not lock out the
        # owner either.
        await conn.execute(
            "DELETE FROM passkeys WHERE address = $1 AND credential_id <> $2 AND NOT address_proven",
            address, credential_id,
        )  # fmt: skip
        try:
            await conn.execute(
                "INSERT INTO passkeys (credential_id, address, username, public_key, sign_count, address_proven, "
                "on_chain, generation) VALUES ($1, $2, $3, $4, $5, true, $6, $7)",
                credential_id, address, username, public_key, sign_count, on_chain, generation,
            )  # fmt: skip
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "passkeys_proven_address":
                raise Conflict(ADDRESS_BOUND) from None
            raise Conflict("this passkey is already registered") from None
        if username:
            await conn.execute(
                "INSERT INTO users (username, address) VALUES ($1, $2) ON CONFLICT DO NOTHING", username, address
            )
    return generation


async def find(pool: asyncpg.Pool, credential_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT credential_id, address, username, public_key, sign_count, on_chain, generation FROM passkeys "
        "WHERE credential_id = $1",
        credential_id,
    )


async def take_over(pool: asyncpg.Pool, credential_id: str, stored: asyncpg.Record, public_key: bytes,
                    sign_count: int) -> int:  # fmt: skip
    """The binding now holds the key the deployed wallet names for the credential (its holder just logged in with it):
    the next generation, so the sessions of whoever bound another key end; the username they chose goes too."""
    async with pool.acquire() as conn, conn.transaction():
        generation = await conn.fetchval(
            "UPDATE passkeys SET public_key = $2, sign_count = $3, on_chain = true, username = '', "
            "generation = generation + 1 WHERE credential_id = $1 AND public_key = $4 RETURNING generation",
            credential_id, public_key, sign_count, stored["public_key"],
        )  # fmt: skip
        if generation is None:
            raise Unauthorized("this assertion was already used")  # (another login changed the binding meanwhile)
        if stored["username"]:
            await conn.execute("DELETE FROM users WHERE address = $1 AND username = $2", stored["address"],
                               stored["username"])  # fmt: skip
    return generation


async def confirm_on_chain(pool: asyncpg.Pool, credential_id: str, public_key: bytes) -> None:
    await pool.execute("UPDATE passkeys SET on_chain = true WHERE credential_id = $1 AND public_key = $2",
                       credential_id, public_key)  # fmt: skip


async def end_sessions(pool: asyncpg.Pool, credential_id: str, address: str) -> None:
    await pool.execute("UPDATE passkeys SET generation = generation + 1 WHERE credential_id = $1 AND address = $2",
                       credential_id, address)  # fmt: skip


async def generation(pool: asyncpg.Pool, credential_id: str, address: str) -> int | None:
    """The generation of the credential's binding to `address`; None when there is none (replaced, or never was)."""
    return await pool.fetchval("SELECT generation FROM passkeys WHERE credential_id = $1 AND address = $2",
                               credential_id, address)  # fmt: skip
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
