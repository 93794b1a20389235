"""A throwaway stack for the benchmark scripts: Temporal dev server in memory, pgserver in a temp dir, the API,
and optionally a worker, as real processes on free ports."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from commands.stack import ROOT, start_temporal, stop_postgres, wait_for_port  # noqa: E402
from smol.db import embedded_postgres  # noqa: E402
from smol.settings import Settings  # noqa: E402
from smol.tokens import issue_token  # noqa: E402
from tests.conftest import free_port  # noqa: E402

SECRET = "bench-secret-" + "b" * 32


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def auth(address: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(Settings(jwt_secret=SECRET), address)}"}


def signed_in(address: str = "GBENCHREADER") -> tuple[str]:
    """wrk's header for a signed-in caller, whose answers are always made afresh (api/public_cache.py)."""
    return (f"Authorization: {auth(address)['Authorization']}",)


@contextlib.contextmanager
def bench_stack(worker: bool = True, api_workers: int = 1, worker_nice: int = 0, **settings_env):
    base = Path(tempfile.mkdtemp(prefix="smol-bench-"))
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}", data_dir=base, task_queue="bench")
    temporal = start_temporal(settings, free_port(), None)
    pg = embedded_postgres(settings)
    env = {
        **os.environ, "SMOL_TEMPORAL_ADDRESS": settings.temporal_address, "SMOL_TASK_QUEUE": "bench",
        "SMOL_DATA_DIR": str(base), "SMOL_DATABASE_URL": pg.get_uri(), "SMOL_JWT_SECRET": SECRET,
        "SMOL_CREATES_PER_MINUTE": "1000000",
        **{f"SMOL_{k.upper()}": str(v) for k, v in settings_env.items()},
    }  # fmt: skip
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port), "--log-level", "warning"]
    if api_workers > 1:
        command += ["--workers", str(api_workers)]
    processes = {"api": subprocess.Popen(command, env=env, cwd=ROOT)}
    if worker:
        command = ["nice", "-n", str(worker_nice), sys.executable, str(ROOT / "worker.py")]
        processes["worker"] = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc=processes["api"])
        yield {"url": f"http://127.0.0.1:{port}", "settings": settings, "database_url": pg.get_uri(),
               "processes": processes}  # fmt: skip
    finally:
        for proc in [*processes.values(), temporal]:
            proc.terminate()
            proc.wait()
        stop_postgres(Path(pg.pgdata))
        shutil.rmtree(base, ignore_errors=True)  # (a seeded database takes gigabytes: runs had filled the disk)
