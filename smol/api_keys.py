"""API keys: `smol_sk_` + 43 URL-safe characters (256 random bits). Only their SHA-256 is stored; a key acts as the
address that made it until it is revoked, or until the passkey sign-in that made it ends (schema/017)."""

import hashlib
import secrets

import asyncpg

PREFIX = "smol_sk_"
MAX_KEYS = 50  # live keys per address
# A key is live until revoked, and while the passkey binding (and its generation) whose session made it still holds.
LIVE = """revoked_at IS NULL AND (passkey IS NULL OR EXISTS (
    SELECT 1 FROM passkeys p WHERE p.credential_id = api_keys.passkey AND p.address = api_keys.address
    AND p.generation = api_keys.generation))"""


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX)


async def create(pool: asyncpg.Pool, address: str, name: str, passkey: str | None = None,
                 generation: int | None = None) -> dict | None:  # fmt: skip
    """A new key for `address`: {id, name, key, prefix, created_at}; the key itself is never seen again. None when
    the address already has MAX_KEYS live keys. `passkey` and `generation`: the binding of the session making it."""
    key = new_key()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('api_keys:' || $1))", address)
        live = await conn.fetchval(f"SELECT count(*) FROM api_keys WHERE address = $1 AND {LIVE}", address)
        if live >= MAX_KEYS:
            return None
        row = await conn.fetchrow(
            "INSERT INTO api_keys (id, address, name, prefix, key_hash, passkey, generation) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name, prefix, created_at",
            "key_" + secrets.token_hex(8), address, name, key[: len(PREFIX) + 4], digest(key), passkey,
            generation if passkey else None,
        )  # fmt: skip
    return {**dict(row), "key": key}


async def owner(pool: asyncpg.Pool, key: str) -> tuple[str, str] | None:
    """(key id, address) of a live key, noting its use; None for an unknown or revoked key."""
    row = await pool.fetchrow(
        f"UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 AND {LIVE} RETURNING id, address",
        digest(key),
    )
    return (row["id"], row["address"]) if row else None


async def is_live(pool: asyncpg.Pool, key_id: str) -> bool:
    return bool(await pool.fetchval(f"SELECT true FROM api_keys WHERE id = $1 AND {LIVE}", key_id))


async def list_for(pool: asyncpg.Pool, address: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT id, name, prefix, created_at, last_used_at FROM api_keys WHERE address = $1 AND {LIVE} "
        "ORDER BY created_at DESC, id",
        address,
    )


async def revoke(pool: asyncpg.Pool, address: str, key_id: str) -> bool:
    return bool(
        await pool.fetchval(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND address = $2 AND revoked_at IS NULL "
            "RETURNING true",
            key_id, address,
        )  # fmt: skip
    )
