"""In-process workers with the real activities around providers that misbehave on purpose."""

import dataclasses
from contextlib import asynccontextmanager

from activities.failures import smol_worker
from activities.pipeline import SmolActivities
from activities.providers.registry import build_providers
from contracts.smol import Payload, SmolInput, Song
from smol.errors import ProviderError
from smol.ids import new_smol_id
from smol.store import open_store
from tests.support import WEBHOOK_SECRET
from workflows.smol import SmolWorkflow


class FlakyImage:
    """Fails the first `failures` calls with a retryable error, then draws for real."""

    def __init__(self, real, failures: int):
        self.real, self.failures, self.calls, self.name = real, failures, 0, "flaky"

    async def generate(self, prompt: str, seed: int) -> bytes:
        self.calls += 1
        if self.calls <= self.failures:
            raise ProviderError("503 from the image service")
        return await self.real.generate(prompt, seed)


class RefusingSongs:
    """Accepts the job, then reports a content-policy failure (status -1) like the song service does."""

    name = "refusing"

    async def submit(self, job, taken=None):
        return [f"refused-{job.smol_id[:8]}-a", f"refused-{job.smol_id[:8]}-b"]

    async def poll(self, song_ids):
        return [Song(music_id=song_ids[0], status=-1), Song(music_id=song_ids[1], status=2)]

    async def fetch_audio(self, music_id, audio_url=None):
        raise AssertionError("a refused song is never downloaded")


def activities_with(stack, pool, stall_seconds: float = 600.0, poll_interval: float = 0.3,
                    heartbeat_poll_limit: float = 10.0, **replace) -> SmolActivities:  # fmt: skip
    store = open_store(stack.settings)
    providers = dataclasses.replace(build_providers(stack.settings, store), **replace)
    return SmolActivities(pool, store, providers, poll_interval=poll_interval, webhook_secret=WEBHOOK_SECRET,
                          webhooks_allow_private=True, song_stall_seconds=stall_seconds,
                          heartbeat_poll_limit=heartbeat_poll_limit)  # fmt: skip


def worker_for(temporal, task_queue, activities):
    return smol_worker(temporal, task_queue=task_queue, workflows=[SmolWorkflow], activities=activities.all())


async def start_smol(temporal, task_queue, prompt="a flaky frog", address="GFAIL", public=True):
    smol_id = new_smol_id()
    handle = await temporal.start_workflow(
        SmolWorkflow.run, SmolInput(smol_id, Payload(address=address, prompt=prompt, public=public)),
        id=smol_id, task_queue=task_queue,
    )  # fmt: skip
    return smol_id, handle


def record_into(calls: list):
    """A chain recorder that only notes which provider was asked."""

    @asynccontextmanager
    async def record(name):
        calls.append(name)
        yield

    return record
