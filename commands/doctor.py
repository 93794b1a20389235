"""`smol doctor`: are the rows and the objects consistent? Every finished smol has its cover and both songs,
every object and pipeline row belongs to a smol that exists or is still being made (or can be retried), and no
mint holds smols it no longer works on."""

from dataclasses import dataclass

import asyncpg

from smol.store import ObjectStore

CATALOG_PREFIXES = ("audio/", "catalog/", "provider-jobs/catalog/")


@dataclass
class Problem:
    kind: str  # missing-object, orphan-object, orphan-row, stale-claim, stuck-mint, unsaved-failure
    subject: str
    detail: str


async def examine(pool: asyncpg.Pool, store: ObjectStore, running_mints: set[str] | None = None,
                  failed_smols: set[str] | None = None) -> list[Problem]:  # fmt: skip
    """Every inconsistency found. `running_mints` (ids of mint workflows still running), when given, also finds
    mints that stopped without finishing their bookkeeping; `failed_smols` (ids of smols whose last run failed or
    timed out), smols that failed before anything of them was saved (their prompt is only in Temporal's history)."""
    problems: list[Problem] = []
    smols = {r["id"]: r for r in await pool.fetch("SELECT id, song_1, song_2 FROM smols")}
    in_pipeline = {r["smol_id"] for r in await pool.fetch("SELECT DISTINCT smol_id FROM smol_steps")}
    songs = {r["music_id"]: r for r in await pool.fetch("SELECT music_id, smol_id, status, object_key FROM smol_songs")}
    keys = {key async for key in store.keys()}

    for smol_id, row in smols.items():
        if f"{smol_id}.png" not in keys:
            problems.append(Problem("missing-object", smol_id, "the cover is not in the store"))
        for music_id in (row["song_1"], row["song_2"]):
            if f"{music_id}.mp3" not in keys:
                problems.append(Problem("missing-object", smol_id, f"song {music_id} is not in the store"))

    known = smols.keys() | in_pipeline
    for music_id, song in songs.items():
        if song["smol_id"] not in known:
            problems.append(
                Problem("orphan-row", music_id, f"song row of smol {song['smol_id']}, which does not exist")
            )
    for key in sorted(keys):
        if key.startswith(CATALOG_PREFIXES):
            continue  # the SoundFlow catalog's own objects: `smol catalog validate` checks them
        name = key.rsplit("/", 1)[-1]
        if key.endswith(".png") and "/" not in key:
            owner_known = name.removesuffix(".png") in known
        elif key.endswith(".mp3") and "/" not in key:
            song = songs.get(name.removesuffix(".mp3"))
            owner_known = song is not None and song["smol_id"] in known
        elif key.startswith("provider-jobs/"):
            song = songs.get(name.removesuffix(".json"))
            owner_known = song is not None and song["smol_id"] in known and song["object_key"] is None
        else:
            owner_known = False
        if not owner_known:
            problems.append(Problem("orphan-object", key, "no smol row or pipeline step refers to it"))

    for table in ("likes", "playlists"):
        for row in await pool.fetch(f"SELECT DISTINCT id FROM {table} t WHERE NOT EXISTS "
                                    f"(SELECT 1 FROM smols s WHERE s.id = t.id)"):  # fmt: skip
            problems.append(Problem("orphan-row", row["id"], f"{table} entry of a smol that does not exist"))

    for row in await pool.fetch("SELECT c.smol_id, m.id, m.status FROM mint_claims c JOIN mints m ON m.id = c.mint_id "
                                "WHERE m.status IN ('minted', 'failed')"):  # fmt: skip
        problems.append(
            Problem("stale-claim", row["smol_id"], f"claimed by mint {row['id']}, which is {row['status']}")
        )
    if running_mints is not None:
        for row in await pool.fetch("SELECT id, status FROM mints WHERE status NOT IN ('minted', 'failed')"):
            if row["id"] not in running_mints:
                problems.append(Problem("stuck-mint", row["id"],
                                        f"{row['status']}, but its workflow is not running"))  # fmt: skip
    for smol_id in sorted((failed_smols or set()) - smols.keys() - in_pipeline):
        problems.append(Problem("unsaved-failure", smol_id, "its run failed before its payload was saved; "
                                                            "retry it (smol retry / POST /retry/{id})"))  # fmt: skip
    return problems
