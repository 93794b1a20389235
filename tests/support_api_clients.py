"""Helpers for the API client tests: an API process whose log is kept, providers that take a known time."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from activities.providers.local.songs import LocalSongs
from commands.stack import ROOT, wait_for_port
from contracts.smol import Payload, SmolInput
from smol.ids import new_smol_id
from tests.support import free_port
from workflows.smol import SmolWorkflow


def start_logged_api(env: dict, log: Path, **overrides) -> tuple[subprocess.Popen, str]:
    """An API process logging everything (uvicorn's access log included) into `log`."""
    port = free_port()
    env = {**env, "SMOL_LOG_LEVEL": "DEBUG", **{f"SMOL_{k.upper()}": str(v) for k, v in overrides.items()}}
    command = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "debug"]  # fmt: skip
    out = open(log, "wb")
    api = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, proc=api)
    return api, f"http://127.0.0.1:{port}"


class Steady:
    """A real provider that takes a known time: each call of a method named in `seconds` waits that long first."""

    def __init__(self, real, seconds: dict[str, float], name: str = "steady"):
        self.real, self.seconds, self.name = real, seconds, name

    def __getattr__(self, attr):
        method = getattr(self.real, attr)
        if attr not in self.seconds:
            return method

        async def slow(*args, **kwargs):
            await asyncio.sleep(self.seconds[attr])
            return await method(*args, **kwargs)

        return slow


def steady_songs(store, jobs_root: Path, delay: float) -> LocalSongs:
    """Local songs, ready `delay` seconds after their submission, short enough to render in no time."""
    songs = LocalSongs(store, jobs_root, seconds=5, delay=delay)
    songs.name = "steady"
    return songs


async def start_smol(temporal, task_queue: str, address: str, **payload) -> str:
    smol_id = new_smol_id()
    await temporal.start_workflow(SmolWorkflow.run, SmolInput(smol_id, Payload(address=address, **payload)),
                                  id=smol_id, task_queue=task_queue)  # fmt: skip
    return smol_id


async def eventually(check, timeout: float = 20, interval: float = 0.25):
    """Call `check` until it returns something truthy (visibility lags a little behind a run)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)
