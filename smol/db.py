"""Postgres: where the URL comes from, the pool, and the ordered migrations in `schema/`."""

import json
import logging
from pathlib import Path

import asyncpg

from smol.settings import Settings

log = logging.getLogger(__name__)
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
_MIGRATION_LOCK = 0x5301


def embedded_postgres(settings: Settings):
    """Start (or join) the pgserver instance under data_dir/pg and return it."""
    import pgserver

    pgdata = (settings.data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode=None)


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    return embedded_postgres(settings).get_uri()


class SmolConnection(asyncpg.Connection):
    """A pooled connection that knows whether its session was changed (a setting, a session lock): only such a
    connection is reset when it goes back to the pool. asyncpg resets every connection by default, a round trip
    on every release, which cost GET /{id} one for each of its queries."""

    session_changed = False
    plans_once = False  # started with plan_cache_mode = force_generic_plan (`open_pool(plans_once=True)`)

    async def set_session(self, setting: str, value: str | int) -> None:
        """SET a session setting (until the connection goes back to the pool)."""
        self.session_changed = True
        await self.execute(f"SET {setting} = {value}")

    def mark_session_changed(self) -> None:
        self.session_changed = True


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _init_planning_once(conn: SmolConnection) -> None:
    await _init_connection(conn)
    conn.plans_once = True


# Every connection starts with these (a reset returns to them): HNSW scans ask for 40 candidates (pgvector's
# default, whatever the server's own is; smol/search.py `similar` sets more only when it needs more).
SESSION = {"hnsw.ef_search": "40"}


async def _reset_if_changed(conn: SmolConnection) -> None:
    # (before this, asyncpg has rolled back a transaction left open)
    if conn.session_changed:
        conn.session_changed = False
        await conn.execute(conn.get_reset_query())


CONNECT_SECONDS = 5
REQUEST_STATEMENT_MS = 10_000  # (the API's: a request's statement runs at most this long)
RELEASE_SECONDS = 2.0
MIGRATION_SECONDS = 24 * 3600.0  # (each statement of a migration, and waiting for another process's, past any limit)


class _PromptReleasePool(asyncpg.Pool):
    """Hands a connection back within RELEASE_SECONDS, else closes it. After a query timed out, asyncpg otherwise
    waits, on the request's time, for the server to confirm the cancel and answer the reset: another command timeout
    when it is stopped. (A release does no I/O otherwise: `_reset_if_changed`.)"""

    async def release(self, connection, *, timeout=None):
        return await super().release(connection, timeout=RELEASE_SECONDS if timeout is None else timeout)


async def open_pool(url: str, min_size: int = 1, max_size: int = 10, plans_once: bool = False,
                    timeout_ms: int | None = None) -> asyncpg.Pool:  # fmt: skip
    """`plans_once`: each statement is planned once per connection, whatever its arguments (a pool for search, whose
    planning cost as much as its execution: a session of its own saves setting it and resetting it every time).
    `timeout_ms`: a statement running longer is cancelled (QueryCanceledError, which the API answers 503); and a
    server that does not answer at all (stopped, partitioned away) is given up on 1 s later, as one that cannot be
    reached at all is after `CONNECT_SECONDS` (TimeoutError: 503 too), its connection handed back within
    `RELEASE_SECONDS`. Without them a request waited forever."""
    session = SESSION | ({"plan_cache_mode": "force_generic_plan"} if plans_once else {})
    limits = {}
    if timeout_ms:
        session |= {"statement_timeout": str(timeout_ms)}
        limits = {"command_timeout": timeout_ms / 1000 + 1, "timeout": CONNECT_SECONDS}
    pool_class = _PromptReleasePool if timeout_ms else asyncpg.Pool
    return await pool_class(url, min_size=min_size, max_size=max_size, server_settings=session,
                            init=_init_planning_once if plans_once else _init_connection, reset=_reset_if_changed,
                            connection_class=SmolConnection, record_class=asyncpg.Record, max_queries=50_000,
                            max_inactive_connection_lifetime=300.0, loop=None, **limits)  # fmt: skip


async def create_pool(settings: Settings, min_size: int = 1, max_size: int = 10, plans_once: bool = False,
                      timeout_ms: int | None = None):  # fmt: skip
    return await open_pool(database_url(settings), min_size, max_size, plans_once, timeout_ms)


async def require_pgvector(conn: asyncpg.Connection) -> None:
    """Search needs the pgvector extension (schema/010_search.sql): say so plainly rather than fail mid-migration."""
    if not await conn.fetchval("SELECT true FROM pg_available_extensions WHERE name = 'vector'"):
        raise RuntimeError(
            "this Postgres lacks the pgvector extension, which search needs: install it "
            "(https://github.com/pgvector/pgvector, e.g. the postgresql-16-pgvector package or the pgvector/pgvector "
            "image) or leave SMOL_DATABASE_URL unset to use the embedded Postgres, which ships it"
        )


async def migrate(pool: asyncpg.Pool, schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Apply every `.sql` file not yet recorded, in name order, each in its own transaction."""
    applied_now = []
    async with pool.acquire() as conn:
        await require_pgvector(conn)
        wait = MIGRATION_SECONDS
        await conn.set_session("statement_timeout", 0)  # (a migration, or waiting for another's, may take long;
        # the setting and the lock, released below, go with the session's reset when it goes back to the pool)
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK, timeout=wait)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", timeout=wait,
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations", timeout=wait)}
            for path in sorted(schema_dir.glob("*.sql")):
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(), timeout=wait)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.name, timeout=wait)
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK, timeout=wait)
    return applied_now
