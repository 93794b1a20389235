"""GET / pages: keyset order, no smol missing or repeated, also while new smols arrive; migrations."""

import base64
import hashlib
import json

from smol.db import SCHEMA_DIR, migrate

PREFIX = "pg"
LISTED = "SELECT id FROM smols WHERE public AND safe ORDER BY created_at DESC, id DESC"  # what GET / shows, in order


def _id(n: int) -> str:
    return hashlib.sha256(f"page-{n}".encode()).hexdigest()


async def _insert(pool, ids, when="2020-01-01 00:00:00", public=True):
    await pool.executemany(
        "INSERT INTO smols (id, title, song_1, song_2, created_at, public, address) "
        "VALUES ($1, 't', 's1', 's2', $2::text::timestamp, $3, 'GPAGE') ON CONFLICT DO NOTHING",
        [(i, when, public) for i in ids],
    )


async def _walk(http, limit: int, on_page=None) -> list[str]:
    seen, cursor = [], None
    for _ in range(200):
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        body = (await http.get("/", params=params)).json()
        assert len(body["smols"]) <= limit
        seen += [s["Id"] for s in body["smols"]]
        if on_page:
            await on_page()
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["nextCursor"] is None
            return seen
        cursor = body["pagination"]["nextCursor"]
    raise AssertionError("pagination did not end")


async def test_pages_cover_every_public_smol_once_even_with_equal_timestamps(pool, http):
    same_second = [_id(n) for n in range(23)]
    await _insert(pool, same_second)
    await _insert(pool, [_id(n) for n in range(100, 110)], when="2019-06-01 12:00:00")
    await _insert(pool, [_id(n) for n in range(200, 205)], public=False)
    expected = [
        r["id"] for r in await pool.fetch(LISTED)
    ]
    seen = await _walk(http, 7)
    assert [i for i in seen if i in set(expected)] == expected  # smols made meanwhile by other tests may lead
    assert not set(seen) & {_id(n) for n in range(200, 205)}


async def test_new_smols_arriving_while_paging_do_not_shift_pages(pool, http):
    await _insert(pool, [_id(n) for n in range(300, 320)], when="2018-01-01 00:00:00")
    before = [r["id"] for r in await pool.fetch(LISTED)]
    counter = iter(range(400, 1000))

    async def arrive():
        await _insert(pool, [_id(next(counter))], when="2030-01-01 00:00:00")

    seen = await _walk(http, 5, on_page=arrive)
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in set(before)] == before


async def test_limit_and_cursor_edge_cases(pool, http):
    await _insert(pool, [_id(n) for n in range(500, 560)], when="2017-01-01 00:00:00")
    for raw, expected in [("abc", 50), ("0", 50), ("-3", 50), ("1000", 100), ("2", 2)]:
        assert len((await http.get("/", params={"limit": raw})).json()["smols"]) == expected, raw
    first = (await http.get("/", params={"limit": "3"})).json()["smols"]
    for junk in [
        "%%%",
        "bm90IGpzb24=",
        base64.b64encode(json.dumps({"createdAt": "yesterday", "id": 1}).encode()).decode(),
    ]:
        response = await http.get("/", params={"limit": "3", "cursor": junk})
        assert response.status_code == 200 and response.json()["smols"] == first
    assert "max-age=30" in (await http.get("/")).headers["cache-control"]


async def test_migrations_are_recorded_and_not_applied_twice(pool):
    assert await migrate(pool) == []
    versions = [r["version"] for r in await pool.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == sorted(path.name for path in SCHEMA_DIR.glob("*.sql")) and len(versions) >= 3
