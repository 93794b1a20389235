"""`Idempotency-Key` on creating requests, as payment APIs do it: the same caller, key and request within 24 hours get
the first answer again without anything being done twice; the same key with another request is refused; a request
while the first with its key is still being answered is told to wait. Kept in Postgres, so it holds across API
processes. Only successful answers are kept: after an error the client may send the request again."""

import hashlib
import json
from dataclasses import dataclass

import asyncpg

WINDOW = "24 hours"
ABANDONED = "5 minutes"  # an answer in flight this long was lost with its process: the key may be used again
MAX_KEY = 255


@dataclass
class Stored:
    """What `begin` found: the first request's answer (`status` None: still in flight), or that it was another
    request (`same` False)."""

    same: bool
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY and key.isascii() and key.isprintable()


def request_hash(method: str, path: str, body: bytes) -> bytes:
    """The request as compared: its method, path and body (JSON compared by value, not by spelling)."""
    try:
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError, UnicodeEncodeError):
        pass
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + body).digest()


async def begin(pool: asyncpg.Pool, address: str, key: str, digest: bytes) -> Stored | None:
    """None when this request now holds the key (answer it, then `finish` or `forget`); else what the key holds."""
    for _ in range(3):  # the holder may forget the key between our insert and our read
        claimed = await pool.fetchval(
            "INSERT INTO idempotency_keys (address, key, request_hash) VALUES ($1, $2, $3) "
            "ON CONFLICT (address, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL, "
            "content_type = NULL, body = NULL, created_at = now() "
            f"WHERE idempotency_keys.created_at < now() - interval '{WINDOW}' "
            f"OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < now() - interval '{ABANDONED}') "
            "RETURNING true",
            address, key, digest,
        )  # fmt: skip
        if claimed:
            await pool.execute(
                "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys "
                f"WHERE created_at < now() - interval '{WINDOW}' LIMIT 100))"
            )
            return None
        row = await pool.fetchrow(
            "SELECT request_hash, status, content_type, body FROM idempotency_keys WHERE address = $1 AND key = $2",
            address, key,
        )  # fmt: skip
        if row is not None:
            if row["request_hash"] != digest:
                return Stored(same=False)
            return Stored(same=True, status=row["status"], content_type=row["content_type"], body=row["body"])
    return Stored(same=True)  # taken and released over and over: in flight, as far as this request can tell


async def finish(pool: asyncpg.Pool, address: str, key: str, status: int, content_type: str, body: bytes) -> None:
    await pool.execute(
        "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 WHERE address = $1 AND key = $2",
        address, key, status, content_type, body,
    )  # fmt: skip


async def forget(pool: asyncpg.Pool, address: str, key: str) -> None:
    await pool.execute("DELETE FROM idempotency_keys WHERE address = $1 AND key = $2 AND status IS NULL", address, key)
