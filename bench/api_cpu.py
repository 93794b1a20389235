"""CPU time the API spends per request, measured in process: N requests one after another straight into the ASGI
app (no HTTP server, no load generator), against a real Postgres and Temporal. Steadier than req/s under load on
a shared machine; Postgres's own time is not counted (another process).

    .venv/bin/python bench/api_cpu.py [/ID /healthz ...]   (ID: a finished public smol)
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api_load import seed  # noqa: E402
from stack import SECRET, bench_stack  # noqa: E402


async def call(app, path: str) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"]


async def run(paths: list[str]) -> None:
    with bench_stack(worker=False, count_once_seconds=0) as stack:  # (each request counts, as from a new listener)
        ids = await seed(stack["database_url"], 2000)
        settings = stack["settings"]
        os.environ.update({"SMOL_TEMPORAL_ADDRESS": settings.temporal_address, "SMOL_TASK_QUEUE": "bench",
                           "SMOL_DATABASE_URL": stack["database_url"], "SMOL_JWT_SECRET": SECRET,
                           "SMOL_DATA_DIR": str(settings.data_dir)})  # fmt: skip
        from api.app import create_app

        app = create_app()
        print(f"cores: {os.cpu_count()}; 5 runs of 500 requests each, one at a time")
        async with app.router.lifespan_context(app):
            for path in paths:
                path = path.replace("ID", ids[len(ids) // 2])
                for _ in range(200):  # warm-up
                    assert await call(app, path) == 200, path
                runs = []
                for _ in range(5):
                    started = time.process_time()
                    for _ in range(500):
                        await call(app, path)
                    runs.append((time.process_time() - started) / 500 * 1e6)
                print(f"  GET {path[:24]:<24} median {statistics.median(runs):6.0f} µs of API CPU per request "
                      f"(runs: {', '.join(f'{r:.0f}' for r in runs)})")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1:] or ["/ID", "/healthz"]))
