"""The pool hands out connections as new: a session setting changed through `set_session` (or a session marked
changed) is reset on release, and a transaction left open is rolled back; other connections skip the reset."""

import asyncio

import asyncpg
import pytest

from api.errors import UNAVAILABLE
from smol import db
from smol.db import open_pool


async def test_a_changed_session_is_reset_before_the_next_user_gets_the_connection(stack):
    pool = await open_pool(stack.settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            default = await conn.fetchval("SHOW statement_timeout")
            await conn.set_session("statement_timeout", "4321")
            assert await conn.fetchval("SHOW statement_timeout") == "4321ms"
        async with pool.acquire() as conn:  # the same connection (the pool holds one)
            assert await conn.fetchval("SHOW statement_timeout") == default
            assert not conn.session_changed
    finally:
        await pool.close()


async def test_an_unchanged_connection_goes_back_without_a_reset_and_an_open_transaction_is_rolled_back(stack):
    pool = await open_pool(stack.settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE kept (n int)")  # session state RESET ALL would not clear either
            await conn.execute("SET application_name = 'not marked'")  # not through set_session: not reset
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO kept VALUES (1)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "not marked"
            assert await conn.fetchval("SELECT count(*) FROM kept") == 0  # the insert was rolled back
    finally:
        await pool.close()


async def test_a_search_pool_starts_planning_once_and_a_reset_returns_there(stack):
    """`plans_once` connections start with a generic plan per statement and 40 HNSW candidates; a search that sets
    other values for itself (several words, a refined "more like this") leaves the next user the starting ones."""
    pool = await open_pool(stack.settings.database_url, min_size=1, max_size=1, plans_once=True)
    try:
        async with pool.acquire() as conn:
            assert conn.plans_once
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
            assert await conn.fetchval("SHOW hnsw.ef_search") == "40"
            await conn.set_session("plan_cache_mode", "force_custom_plan")
            await conn.set_session("hnsw.ef_search", 200)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
            assert await conn.fetchval("SHOW hnsw.ef_search") == "40"
    finally:
        await pool.close()


async def test_a_statement_past_the_pools_timeout_is_cancelled_and_answered_503(stack):
    """(the API's search pool: a search crafted to be slow cannot hold a connection and a core for long)"""
    pool = await open_pool(stack.settings.database_url, min_size=1, max_size=1, timeout_ms=200)
    try:
        await pool.execute("SELECT pg_sleep(0.05)")  # (within it)
        with pytest.raises(asyncpg.QueryCanceledError) as cancelled:
            await pool.fetchval("SELECT pg_sleep(5)")
        assert isinstance(cancelled.value, UNAVAILABLE)  # (api/errors.py: 503 with Retry-After)
        assert await pool.fetchval("SELECT 1") == 1  # the connection serves the next one
    finally:
        await pool.close()


async def test_migrations_are_not_cut_short_by_the_pools_timeout(stack):
    """The API's pool cancels statements past 10 s; a migration, or waiting for another process's, may take longer."""
    pool = await open_pool(stack.settings.database_url, min_size=1, max_size=1, timeout_ms=100)
    holder = await asyncpg.connect(stack.settings.database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", db._MIGRATION_LOCK)  # another process migrating
        migrating = asyncio.create_task(db.migrate(pool))
        await asyncio.sleep(0.5)
        assert not migrating.done()  # waiting, not cancelled
        await holder.execute("SELECT pg_advisory_unlock($1)", db._MIGRATION_LOCK)
        assert await asyncio.wait_for(migrating, 30) == []
        assert await pool.fetchval("SHOW statement_timeout") == "100ms"  # (the pool's again afterwards)
    finally:
        await holder.close()
        await pool.close()
