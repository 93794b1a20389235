"""GET / and GET /{id} with a big catalog (default 100,000 smols), against their floor: the same queries the
routes run (smol/repo.py), called straight on asyncpg at the same concurrency with a pool of the API's size.
GET / is asked three ways: as anonymous callers ask it (answered from memory, api/public_cache.py), signed in (the
same copy, once the token passes), and signed in with a page of its own each time (a cursor nobody asked for in the
last seconds: made afresh, the route's own cost; its floor pages from the same cursors).

    .venv/bin/python bench/catalog.py [--smols 100000] [--clients 50] [--seconds 10] [--api-workers 1]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import seed, wrk  # noqa: E402
from stack import bench_stack, signed_in  # noqa: E402

from api.pagination import decode_cursor, encode_cursor  # noqa: E402
from smol import repo  # noqa: E402
from smol.db import open_pool  # noqa: E402

PAGES = 20_000  # cursors a made-afresh run pages from (more than it asks in its seconds: none is asked twice soon)


async def cursors(database_url: str) -> list[str]:
    """Cursors of pages of the public list, each starting after another smol."""
    pool = await open_pool(database_url, min_size=1, max_size=1)
    try:
        return [encode_cursor(row["created_at"], row["id"]) for row in await repo.list_public(pool, PAGES)]
    finally:
        await pool.close()


def paging_script(pages: list[str]) -> Path:
    """A wrk script asking the public list from each cursor in turn (each thread from its own half)."""
    listed = ",".join(f'"{quote(cursor)}"' for cursor in pages)
    script = Path(tempfile.mkdtemp()) / "pages.lua"
    script.write_text(f"""local cursors = {{{listed}}}
local i, threads = 0, 0
function setup(thread) threads = threads + 1; thread:set("first", threads * {len(pages) // 2}) end
function init(args) i = first end
function request()
  i = i % #cursors + 1
  return wrk.format(nil, "/?cursor=" .. cursors[i])
end
""")
    return script


async def direct(database_url: str, query, clients: int, seconds: float) -> str:
    pool = await open_pool(database_url, min_size=clients // 3, max_size=20)  # as the API's
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await query(pool)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    await pool.close()
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:7.2f}ms   p99 {cuts[98] * 1000:7.2f}ms   {len(latencies) / elapsed:8.1f} req/s"


async def run(args) -> None:
    # (count_once_seconds=0: each request counts, as from a new listener)
    with bench_stack(worker=False, api_workers=args.api_workers, count_once_seconds=0) as stack:
        started = time.perf_counter()
        public_ids = await seed(stack["database_url"], args.smols)
        print(f"cores: {os.cpu_count()}, smols: {args.smols} (seeded in {time.perf_counter() - started:.0f}s), "
              f"{args.clients} concurrent clients, {args.seconds}s each; wrk and the API share the cores")  # fmt: skip
        one = public_ids[len(public_ids) // 2]

        async def list_page(pool):
            await repo.list_public(pool, 51)

        async def detail(pool):  # what GET /{id} asks of Postgres for a finished smol
            await repo.smol_page(pool, one, None, count_view=True)

        pages = await cursors(stack["database_url"])
        turn = iter(range(1 << 62))

        async def page_after(pool):
            await repo.list_public(pool, 51, decode_cursor(pages[next(turn) % len(pages)]))

        url = stack["url"]
        print(f"  GET /        API {wrk(url + '/', args.clients, args.seconds)}")
        print(f"  (signed in) {wrk(url + '/', args.clients, args.seconds, headers=signed_in())}")
        print(f"               SQL {await direct(stack['database_url'], list_page, args.clients, args.seconds)}")
        uncached = wrk(url + "/", args.clients, args.seconds, headers=signed_in(), script=paging_script(pages))
        print(f"  (signed in, made afresh) {uncached}")
        print(f"       SQL, same pages {await direct(stack['database_url'], page_after, args.clients, args.seconds)}")
        print(f"  GET /{{id}}    API {wrk(url + '/' + one, args.clients, args.seconds)}")
        print(f"               SQL {await direct(stack['database_url'], detail, args.clients, args.seconds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
