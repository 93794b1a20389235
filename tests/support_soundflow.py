"""Helpers of the SoundFlow catalog tests: running days, reading the stack's objects, measuring ambience."""

import asyncio
import json
import time
import uuid

import numpy as np

from contracts.catalog import CatalogDayInput
from smol.store import FileStore
from tests.audio import decode_mp3
from workflows.catalog import CatalogDayWorkflow


def objects(stack) -> FileStore:
    return FileStore(stack.settings.object_store)


def read(stack, key: str) -> bytes:
    return (objects(stack).root / key).read_bytes()


def read_json(stack, key: str):
    return json.loads(read(stack, key))


async def run_day(temporal, date: str, seconds: int | None, task_queue: str = "smol-tests", workflow_id=None):
    workflow_id = workflow_id or f"test-day-{date}-{uuid.uuid4().hex[:6]}"
    return await temporal.execute_workflow(CatalogDayWorkflow.run, CatalogDayInput(date, seconds), id=workflow_id,
                                           task_queue=task_queue)  # fmt: skip


def ambience(mp3: bytes) -> float:
    """Median spectral flatness of 46 ms frames: steady noise-like sound (rain, wind, water) is flat, music is not,
    and drums are too short to move the median."""
    samples, rate = decode_mp3(mp3)
    hop = 2048
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop) * np.hanning(hop)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return float(np.median(flatness))


def duration(mp3: bytes) -> float:
    samples, rate = decode_mp3(mp3)
    return len(samples) / rate


async def wait_until(condition, timeout: float = 60, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"not reached in {timeout} s")
