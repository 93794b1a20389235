"""Latency of GET /, GET /{id} and POST / at N concurrent clients, with M smols in the table.

The smols are inserted straight into Postgres (with their step rows) so the catalog is big without making
10,000 songs. POST / is measured with no worker running: it is the time to validate, rate-limit and start the
workflow, which then waits in the queue. The load comes from wrk (Debian's package), on the same two cores as the API.

    .venv/bin/python bench/api_load.py [--smols 10000] [--clients 50] [--seconds 10] [--api-workers 1]
"""

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import auth, bench_stack  # noqa: E402

START = datetime(2026, 1, 1)


async def seed(database_url: str, count: int) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        ids = [hashlib.sha256(f"load-{n}".encode()).hexdigest() for n in range(count)]
        await conn.copy_records_to_table(
            "smols",
            columns=["id", "title", "song_1", "song_2", "public", "address", "created_at"],
            records=[(i, f"Song {n}", f"a{n}", f"b{n}", n % 10 != 0, f"G{n % 500}", START + timedelta(seconds=n))
                     for n, i in enumerate(ids)],
        )  # fmt: skip
        steps = []
        for i in ids:
            steps += [
                (i, "payload", json.dumps({"address": "G", "prompt": "p", "public": True, "instrumental": False})),
                (i, "lyrics", json.dumps({"value": {"title": "t", "lyrics": "l", "style": ["pop", "chill"]}})),
            ]
        await conn.executemany("INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, $2, $3::jsonb)", steps)
        return [i for n, i in enumerate(ids) if n % 10 != 0]
    finally:
        await conn.close()


POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"prompt": "a load test frog"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%s"
"""


def wrk(url: str, clients: int, seconds: int, script: Path | None = None, headers: tuple[str, ...] = ()) -> str:
    command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", *(f"-H{h}" for h in headers), url]
    if script:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] in (["50%"], ["99%"]):
            figures[parts[0]] = parts[1]
        elif line.startswith("Requests/sec:"):
            figures["rps"] = parts[1]
        elif "Non-2xx" in line:
            figures["non2xx"] = parts[-1]
    return (f"p50 {figures['50%']:>9}   p99 {figures['99%']:>9}   {figures['rps']:>8} req/s   "
            f"non-2xx {figures.get('non2xx', '0')}")  # fmt: skip


async def run(args) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (Debian: apt-get install wrk)")
    with bench_stack(worker=False, api_workers=args.api_workers) as stack:
        public_ids = await seed(stack["database_url"], args.smols)
        script = Path(tempfile.mkdtemp()) / "post.lua"
        script.write_text(POST_SCRIPT % auth("GLOAD")["Authorization"])
        print(f"cores: {os.cpu_count()}, smols: {args.smols}, connections: {args.clients}, {args.seconds}s per route, "
              f"API processes: {args.api_workers}, load from wrk on the same machine")  # fmt: skip
        print(f"  GET /       {wrk(stack['url'] + '/', args.clients, args.seconds)}")
        print(
            f"  GET /{{id}}   {wrk(stack['url'] + '/' + public_ids[len(public_ids) // 2], args.clients, args.seconds)}"
        )
        print(f"  POST /      {wrk(stack['url'] + '/', args.clients, args.seconds, script)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smols", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
