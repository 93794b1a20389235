"""`smol doctor` on a database and store of its own: silent when rows and objects agree, and naming each kind of
inconsistency when they do not."""

import json
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest_asyncio

from commands.doctor import examine
from smol import mints, repo
from smol.ids import new_smol_id
from smol.store import FileStore


@pytest_asyncio.fixture
async def fresh(stack, tmp_path):
    """An empty, migrated database next to the stack's, and an empty store."""
    from smol.db import create_pool, migrate

    name = f"doctor_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.settings.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(stack.settings.database_url)  # e.g. postgresql://postgres:@/postgres?host=/tmp/...
    url = urlunsplit(parts._replace(path=f"/{name}"))
    settings = stack.settings.model_copy(update={"database_url": url, "object_store": str(tmp_path / "objects")})
    pool = await create_pool(settings, max_size=2)
    await migrate(pool)
    yield pool, FileStore(tmp_path / "objects"), settings
    await pool.close()
    await admin.execute(f"DROP DATABASE {name}")
    await admin.close()


async def a_finished_smol(pool, store) -> tuple[str, list[str]]:
    smol_id, songs = new_smol_id(), [uuid.uuid4().hex, uuid.uuid4().hex]
    await repo.save_step(pool, smol_id, "payload", {"address": "G", "prompt": "p"})
    await store.put(f"{smol_id}.png", b"png")
    for variant, music_id in enumerate(songs):
        await store.put(f"{music_id}.mp3", b"mp3")
        await repo.save_song(pool, smol_id, music_id, variant, "local", 4, f"{music_id}.mp3")
    async with pool.acquire() as conn:
        await repo.insert_smol(conn, smol_id=smol_id, title="t", song_1=songs[0], song_2=songs[1], public=True,
                               instrumental=False, address="G", playlist="mix")  # fmt: skip
    return smol_id, songs


async def test_consistent_rows_and_objects_have_no_problems(fresh):
    pool, store, _ = fresh
    await a_finished_smol(pool, store)
    in_progress = new_smol_id()  # a smol still being made: steps and a cover, no row yet
    await repo.save_step(pool, in_progress, "payload", {"address": "G", "prompt": "p"})
    await store.put(f"{in_progress}.png", b"png")
    assert await examine(pool, store, running_mints=set()) == []


async def test_each_kind_of_inconsistency_is_found(fresh):
    pool, store, settings = fresh
    smol_id, songs = await a_finished_smol(pool, store)
    await store.delete(f"{songs[1]}.mp3")
    await store.put("0123456789abcdef.mp3", b"left behind")
    await repo.save_song(pool, new_smol_id(), "lost-song", 0, "local", 1)
    liked_but_gone = new_smol_id()
    await pool.execute("INSERT INTO likes (id, address) VALUES ($1, 'G')", liked_but_gone)
    await mints.claim(pool, "m-done", "G", [smol_id], False, "xdr")
    await pool.execute("UPDATE mints SET status = 'minted' WHERE id = 'm-done'")
    other_id, _ = await a_finished_smol(pool, store)
    await mints.claim(pool, "m-stuck", "G", [other_id], False, "xdr")

    problems = {(p.kind, p.subject) for p in await examine(pool, store, running_mints=set())}
    assert problems == {
        ("missing-object", smol_id), ("orphan-object", "0123456789abcdef.mp3"), ("orphan-row", "lost-song"),
        ("orphan-row", liked_but_gone),
        ("stale-claim", smol_id), ("stuck-mint", "m-stuck"),
    }  # fmt: skip
    assert ("stuck-mint", "m-stuck") not in {(p.kind, p.subject) for p in await examine(pool, store, {"m-stuck"})}

    command = [sys.executable, "-m", "commands.cli", "doctor", "--json"]
    found = subprocess.run(command, env=_env(settings), capture_output=True, text=True, timeout=60)
    assert found.returncode == 1
    kinds = {json.loads(line)["kind"] for line in found.stdout.splitlines()}
    assert {"missing-object", "orphan-object", "orphan-row", "stale-claim"} <= kinds


async def test_the_cli_exits_0_when_all_is_well(fresh):
    pool, store, settings = fresh
    await a_finished_smol(pool, store)
    done = subprocess.run([sys.executable, "-m", "commands.cli", "doctor"], env=_env(settings), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "consistent" in done.stderr


def _env(settings) -> dict:
    import os

    # A namespace without runs: the doctor's world is this database (the session's Temporal has failed runs of others).
    return {**os.environ, "SMOL_DATABASE_URL": settings.database_url, "SMOL_OBJECT_STORE": settings.object_store,
            "SMOL_TEMPORAL_ADDRESS": settings.temporal_address, "SMOL_TEMPORAL_NAMESPACE": "doctor-fresh"}  # fmt: skip


async def test_a_smol_that_failed_before_anything_was_saved_is_reported(fresh):
    pool, store, _ = fresh
    finished, _ = await a_finished_smol(pool, store)
    saved = new_smol_id()
    await repo.save_step(pool, saved, "payload", {"address": "G", "prompt": "p"})  # failed later: retry reuses it
    unsaved = new_smol_id()
    problems = await examine(pool, store, running_mints=set(), failed_smols={finished, saved, unsaved})
    assert [(p.kind, p.subject) for p in problems] == [("unsaved-failure", unsaved)]
    assert "retry" in problems[0].detail
