"""Latency of GET /search and GET /search/{id}/similar with N smols indexed, at C concurrent clients, each compared
with the same SQL (smol/search.py) run directly on asyncpg in the same run; and what indexing adds to a smol.

The smols are inserted straight into Postgres: rows, steps, documents, typo words and vectors (text from a Zipf-
distributed vocabulary, audio features drawn around each genre's tempo), then the indexes are built. The indexing
cost is measured on a real smol: two 30 s songs from the local synthesiser, `analyze_smol` + `index_smol`.
The load on the API comes from wrk (Debian's package), on SQL from asyncpg, on the same two cores as the API and
Postgres. The API is asked three ways: as anonymous callers ask it (an answer made in the last 2 s is reused,
api/public_cache.py), as a signed-in caller who owns no private smol (a bearer token: answered as anyone is, once
the token passes), and as a caller who owns a private smol (never answered as anyone is: every answer made afresh).

    .venv/bin/python bench/search.py [--smols 100000] [--clients 10] [--seconds 10] [--api-workers 1]
"""

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import wrk  # noqa: E402
from stack import bench_stack, signed_in  # noqa: E402

from activities.analysis import THEMES, mood_and_theme, smol_vector  # noqa: E402
from activities.providers.local.vocab import GENRES, MOODS  # noqa: E402
from smol import search  # noqa: E402
from smol.db import _init_connection, open_pool  # noqa: E402
from smol.store import FileStore  # noqa: E402
from tests.support_search import Seed, index, insert  # noqa: E402

FLOOR_MS = 50
START = datetime(2025, 1, 1)
COMMON = sorted({*MOODS, *(w for words in THEMES.values() for w in words.split())}) + [
    "heart", "city", "sky", "river", "signal", "echo", "window", "song", "light", "fire", "dream", "road", "home",
    "summer", "winter", "dance", "night", "morning", "ocean", "garden", "paper", "silver", "golden", "shadow",
]  # fmt: skip


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    made = {"".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))
            for _ in range(size)}  # fmt: skip
    return COMMON + sorted(made)


def corpus(count: int, seed: int = 7):
    """(id, title, style, lyrics, description, address, public, safe, instrumental, created_at, vector) rows."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = 1 / np.arange(1, len(words) + 1)  # Zipf
    weights /= weights.sum()
    genres, moods = list(GENRES), sorted(set(MOODS.values()))
    np_rng = np.random.default_rng(seed)
    for n in range(count):
        picked = [words[i] for i in np_rng.choice(len(words), size=40, p=weights)]
        genre = genres[n % len(genres)]
        style = [genre, moods[(n // 7) % len(moods)]]
        title = " ".join(picked[:3]).title()
        lyrics = " ".join(picked[3:33])
        description = " ".join(picked[33:])
        low, high, _, _ = GENRES[genre]
        tempo = rng.uniform(low, high)
        song = {"tempo": tempo, "mode": "minor" if n % 3 else "major", "chroma": list(np_rng.dirichlet(np.ones(12))),
                "energy": rng.uniform(0.05, 0.3), "brightness": rng.uniform(500, 3000),
                "timbre": list(np_rng.normal(0, 0.5, 14))}  # fmt: skip
        vector = smol_vector([song], style, f"{title} {lyrics} {description}")
        yield (f"{n:064x}", title, style, lyrics, description, f"G{n % 2000}", n % 10 != 0, n % 97 != 0, n % 5 == 0,
               START + timedelta(seconds=n), vector)  # fmt: skip


async def seed(database_url: str, count: int) -> list[str]:
    conn = await asyncpg.connect(database_url)
    await _init_connection(conn)
    try:
        await conn.execute("DROP INDEX smol_vectors_embedding, smol_search_head, smol_bodies_whole")
        rows, started = list(corpus(count)), time.perf_counter()
        await conn.copy_records_to_table(
            "smols", columns=["id", "title", "song_1", "song_2", "public", "safe", "instrumental", "address",
                              "created_at"],
            records=[(r[0], r[1], f"a{r[0][-12:]}", f"b{r[0][-12:]}", r[6], r[7], r[8], r[5], r[9]) for r in rows],
        )  # fmt: skip
        await conn.execute(
            "CREATE TEMP TABLE staged (id text, title text, style text[], lyrics text, description text)"
        )
        await conn.copy_records_to_table("staged", records=[(r[0], r[1], r[2], r[3], r[4]) for r in rows])
        themes = {r[0]: mood_and_theme(r[2], r[3]) for r in rows}
        await conn.execute(
            "INSERT INTO smol_search (smol_id, head, created_at, style) SELECT id, setweight(to_tsvector('english', "
            "t.title), 'A') || setweight(to_tsvector('english', array_to_string(t.style, ' ')), 'B'), s.created_at, "
            "t.style FROM staged t JOIN smols s USING (id)"
        )
        await conn.execute(
            "INSERT INTO smol_bodies (smol_id, whole) SELECT id, d.head || setweight(to_tsvector('english', lyrics), "
            "'C') || setweight(to_tsvector('english', description), 'D') FROM staged t JOIN smol_search d "
            "ON d.smol_id = t.id"
        )
        await conn.executemany("UPDATE smol_search SET mood = $2, theme = $3 WHERE smol_id = $1",
                               [(k, m, t) for k, (m, t) in themes.items()])  # fmt: skip
        await conn.executemany(
            "INSERT INTO smol_vectors (smol_id, embedding, features) VALUES ($1, $2::text::vector, '{}')",
            [(r[0], json.dumps(r[10])) for r in rows],
        )  # fmt: skip
        lexicon = {w for r in rows for w in search.lexicon_words(f"{r[1]} {' '.join(r[2])} {r[3]} {r[4]}")}
        await conn.executemany("INSERT INTO search_words (variant, word) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               [(v, w) for w in lexicon for v in search.typo_variants(w)])  # fmt: skip
        await conn.execute(  # the migration's statements (schema/013), without indexes or checks while filling
            "ALTER TABLE search_postings DROP CONSTRAINT search_postings_pkey; DROP INDEX search_postings_best;"
            "SET session_replication_role = replica;"
            "INSERT INTO search_postings (smol_id, lexeme, impact, created_at) SELECT d.smol_id, u.lexeme, "
            "search_impact(u.weights), d.created_at FROM smol_search d JOIN smol_bodies b ON b.smol_id = d.smol_id, "
            "unnest(b.whole) AS u;"
            "SET session_replication_role = DEFAULT;"
            "INSERT INTO search_lexemes (lexeme, smols) SELECT p.lexeme, count(*) FILTER (WHERE s.public AND s.safe) "
            "FROM search_postings p JOIN smols s ON s.id = p.smol_id GROUP BY p.lexeme"
        )
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("ALTER TABLE search_postings ADD PRIMARY KEY (smol_id, lexeme)")
        await conn.execute("CREATE INDEX search_postings_best ON search_postings "
                           "(lexeme, impact DESC, created_at DESC, smol_id DESC)")  # fmt: skip
        await conn.execute("CREATE INDEX smol_search_head ON smol_search USING gin (head)")
        await conn.execute("CREATE INDEX smol_bodies_whole ON smol_bodies USING gin (whole)")
        built = time.perf_counter()
        await conn.execute(
            "CREATE INDEX smol_vectors_embedding ON smol_vectors USING hnsw (embedding vector_cosine_ops)"
        )
        print(f"seeded {count} smols in {time.perf_counter() - started:.0f}s "
              f"(HNSW build {time.perf_counter() - built:.0f}s)")  # fmt: skip
        await conn.execute("VACUUM ANALYZE")
        return [r[0] for r in rows if r[6] and r[7]]
    finally:
        await conn.close()


def queries(rng: random.Random) -> list[str]:
    """What people type: common and rare words, two words, a genre, a prefix while typing, a typo."""
    words = vocabulary(random.Random(7))
    out = []
    for _ in range(200):
        word = rng.choice(words[:60] if rng.random() < 0.5 else words)
        kind = rng.random()
        if kind < 0.4:
            out.append(word)
        elif kind < 0.55:
            out.append(f"{word} {rng.choice(words[:200])}")
        elif kind < 0.65:
            out.append(rng.choice(list(GENRES)))
        elif kind < 0.85:
            out.append(word[: max(3, len(word) - 2)])  # a prefix
        else:
            i = rng.randrange(len(word) - 1)
            out.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # two letters swapped
    return out


def wrk_paths(url: str, paths: list[str], clients: int, seconds: int, headers: tuple[str, ...] = ()) -> str:
    """wrk's figures for GETs cycling through `paths` (wrk, not a Python client: an httpx client on the same two
    cores used about as much CPU as the API it measured)."""
    listed = ",".join(json.dumps(path) for path in paths)
    cycle = f"""local paths = {{{listed}}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format('GET', paths[i])
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(cycle)
        script.flush()
        return wrk(url, clients, seconds, Path(script.name), headers)


async def owner_of_a_private_smol(database_url: str) -> str:
    """An address owning one private smol: its searches are never answered as anyone's (api/public_cache.py)."""
    address, conn = "GBENCHPRIVATE", await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO smols (id, title, song_1, song_2, public, address) "
                           "VALUES ($1, 'Mine alone', 'p1', 'p2', false, $2)", "f" * 64, address)  # fmt: skip
    finally:
        await conn.close()
    return address


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms   p99 {np.percentile(ms, 99):6.1f} ms   n {len(ms)}"


async def one_at_a_time(call, arguments: list, times: int = 3) -> str:
    """What each call costs without queueing: every argument `times` times, one call after the other."""
    alone = []
    for argument in arguments:
        for _ in range(times):
            started = time.perf_counter()
            await call(argument)
            alone.append(time.perf_counter() - started)
    return (f"median {np.median(alone) * 1000:.1f} ms, p99 {np.percentile(alone, 99) * 1000:.1f} ms, "
            f"slowest {max(alone) * 1000:.1f} ms")


async def by_words(pool) -> str:
    """One query of N common words at a time, answered from the postings and from the GIN indexes (whichever
    smol/search.py `POSTINGS_SLOTS` does not choose is forced): median of 5, ms."""
    out = []
    for n in (2, 3, 4, 6, 8):
        q = " ".join(COMMON[10 : 10 + n]) + " "
        took = {}
        for name, slots in (("postings", 8), ("GIN", 1)):
            chosen, search.POSTINGS_SLOTS = search.POSTINGS_SLOTS, slots
            try:
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    await search.search(pool, q, None, 20)
                    times.append(time.perf_counter() - started)
            finally:
                search.POSTINGS_SLOTS = chosen
            took[name] = np.median(times) * 1000
        out.append(f"{n} words {took['postings']:.1f} / {took['GIN']:.1f}")
    return ", ".join(out)


async def load(call, arguments: list, clients: int, seconds: float) -> list[float]:
    """`clients` loops calling `call(argument)` for `seconds`; each call's latency."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(arguments[i % len(arguments)])
            samples.append(time.perf_counter() - started)
            i += clients

    await asyncio.gather(*(client(n) for n in range(clients)))
    return samples


async def run(args) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    rng = random.Random(11)
    with bench_stack(worker=False, api_workers=args.api_workers) as stack:
        visible = await seed(stack["database_url"], args.smols)
        private_owner = await owner_of_a_private_smol(stack["database_url"])
        texts, ids = queries(rng), rng.sample(visible, 200)
        pool = await open_pool(stack["database_url"], min_size=args.clients, max_size=args.clients)
        search_pool = await open_pool(stack["database_url"], min_size=args.clients, max_size=args.clients,
                                      plans_once=True)  # (as the API's for search: api/app.py)
        async with httpx.AsyncClient(base_url=stack["url"], timeout=30,
                                     limits=httpx.Limits(max_connections=args.clients)) as http:  # fmt: skip

            async def api_search(q):
                response = await http.get("/search", params={"q": q})
                assert response.status_code == 200, response.text

            async def sql_search(q):
                await search.search(search_pool, q, None, 20)

            async def sql_similar(smol_id):
                await search.similar(pool, smol_id, None, 20)

            await load(api_search, texts, args.clients, 2)  # warm both
            await load(sql_similar, ids, args.clients, 2)
            print(f"  one SQL query at a time, {len(texts)} queries × 3: {await one_at_a_time(sql_search, texts)}")
            print(f"  one similar at a time, {len(ids)} smols × 3: {await one_at_a_time(sql_similar, ids)}")
            print(f"  common words, one query at a time, postings / GIN indexes (ms): {await by_words(search_pool)}")
            print(f"{args.smols} smols, {args.clients} concurrent clients, {args.seconds}s each, 2 cores shared by the "
                  f"load (wrk on the API, asyncpg on SQL), API and Postgres; goal: p99 <= {FLOOR_MS} ms")  # fmt: skip
            paths = {"search": [f"/search?{urlencode({'q': q})}" for q in texts],
                     "similar": [f"/search/{smol_id}/similar" for smol_id in ids]}  # fmt: skip
            for name, kind, call, arguments in (("search", "search", sql_search, texts),
                                                ("search/{id}/similar", "similar", sql_similar, ids)):  # fmt: skip
                print(f"  GET /{name:<21}{wrk_paths(stack['url'], paths[kind], args.clients, args.seconds)}")
                signed = wrk_paths(stack["url"], paths[kind], args.clients, args.seconds, signed_in())
                print(f"    (signed in) {signed}")
                fresh = wrk_paths(stack["url"], paths[kind], args.clients, args.seconds, signed_in(private_owner))
                print(f"    (signed in, made afresh) {fresh}")
                sql = await load(call, arguments, args.clients, args.seconds)
                print(f"    same SQL, asyncpg     {percentiles(sql)}   {len(sql) / args.seconds:8.0f} req/s")
            sample = await http.get("/search", params={"q": texts[0]})
            print(f"  e.g. /search?q={texts[0]!r}: {len(sample.json()['results'])} results")

        store = FileStore(stack["settings"].data_dir / "objects")
        timings = []
        for n in range(3):
            smol_id = await insert(pool, store, Seed(title=f"Indexing cost {n}", style=["house", "upbeat"],
                                                     lyrics="frogs dance all night", seconds=30))  # fmt: skip
            started = time.perf_counter()
            assert await index(pool, store, smol_id)
            timings.append(time.perf_counter() - started)
        print(f"  analyze + index, two 30 s songs: {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
        await pool.close()
        await search_pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=1, help="API processes (uvicorn --workers)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
