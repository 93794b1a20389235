"""Durability under faults, on a stack of its own (Temporal with its history in a file, its own Postgres, a worker
process, every provider a local fake): batches of smols complete while the worker is SIGKILLed at each step, the
Temporal server and Postgres restart, and the providers fail or hang; afterwards every step was paid for once
(counted on the fakes) and `smol doctor` finds nothing missing or orphaned."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from commands.doctor import examine
from commands.stack import ROOT, dev_server_flags, stop_postgres, temporal_binary, wait_for_port
from contracts.smol import Payload, SmolInput
from smol import repo
from smol.db import create_pool, migrate
from smol.ids import new_smol_id
from smol.settings import Settings
from smol.store import FileStore
from smol.temporal import connect
from tests.fakes import FakePixellab, FakeSongService, FakeWorkersAI
from tests.support import _stop, free_port
from workflows.smol import SmolWorkflow

pytestmark = pytest.mark.slow
PAID_CAP = 5
POSTGRES_OUTAGE_SECONDS = 180
STEPS_PAID = {"image": 1, "description": 1, "lyrics": 1, "nsfw": 1, "submit": 1, "archive": 2}


class FaultStack:
    def __init__(self, base: Path, audio: bytes):
        self.base = base
        self.pixellab, self.workers_ai = FakePixellab(), FakeWorkersAI()
        self.songs = FakeSongService(audio, ready_after=1.0)
        self.fakes = [self.pixellab, self.workers_ai, self.songs]
        self.temporal_port = free_port()
        self.temporal: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.pgdata = base / "pg"
        self.pgdata.mkdir()
        self.database_url = ""
        self.env: dict = {}

    def start_temporal(self) -> None:
        log = open(self.base / "temporal.log", "ab")
        self.temporal = subprocess.Popen(
            [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.temporal_port),
             "--ui-port", str(free_port()), "--headless", "--log-level", "error",
             "--db-filename", str(self.base / "temporal.db"), *dev_server_flags()],
            stdout=log, stderr=log,
        )  # fmt: skip
        wait_for_port("127.0.0.1", self.temporal_port, proc=self.temporal)

    def stop_temporal(self) -> None:
        _stop(self.temporal)

    def start_postgres(self) -> None:
        import pgserver

        server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # the same object again after a stop
        server.ensure_postgres_running()
        uri = server.get_uri()
        assert self.database_url in ("", uri), "Postgres came back somewhere else"
        self.database_url = uri

    def stop_postgres(self) -> None:
        stop_postgres(self.pgdata)

    def start_worker(self) -> None:
        log = open(self.base / "worker.log", "ab")
        self.worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=self.env, cwd=ROOT,
                                       stdout=log, stderr=log)  # fmt: skip

    def kill_worker(self) -> None:
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()

    def configure(self) -> None:
        self.env = {
            **os.environ,
            "SMOL_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "SMOL_TASK_QUEUE": "faults",
            "SMOL_DATABASE_URL": self.database_url,
            "SMOL_OBJECT_STORE": str(self.base / "objects"),
            "SMOL_DATA_DIR": str(self.base / "data"),
            "SMOL_WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
            "SMOL_SONG_POLL_INTERVAL": "0.5",
            "SMOL_PROVIDER_TIMEOUT": "1",
            "SMOL_MAX_PAID_CALLS_PER_STEP": str(PAID_CAP),
            "SMOL_IMAGE_PROVIDERS": "pixellab", "SMOL_PIXELLAB_URL": f"{self.pixellab.url}/v1",
            "SMOL_PIXELLAB_API_KEY": FakePixellab.KEY,
            "SMOL_DESCRIBE_PROVIDERS": "cloudflare", "SMOL_NSFW_PROVIDERS": "cloudflare",
            "SMOL_CLOUDFLARE_URL": f"{self.workers_ai.url}/client/v4",
            "SMOL_CLOUDFLARE_ACCOUNT_ID": FakeWorkersAI.ACCOUNT, "SMOL_CLOUDFLARE_API_TOKEN": FakeWorkersAI.TOKEN,
            "SMOL_LYRICS_PROVIDERS": "aisonggenerator", "SMOL_SONG_PROVIDERS": "aisonggenerator",
            "SMOL_SONGGEN_URL": self.songs.url, "SMOL_SONGGEN_API_KEY": FakeSongService.KEY,
        }  # fmt: skip

    def reset_fakes(self) -> None:
        for fake in self.fakes:
            fake.failure_rate = fake.drop_rate = fake.lost_rate = fake.delay = 0.0
            fake.hang_seconds = 1.5


@pytest.fixture(scope="module")
def faults(tmp_path_factory, audio):
    stack = FaultStack(tmp_path_factory.mktemp("faults"), audio)
    try:
        stack.start_temporal()
        stack.start_postgres()
        stack.configure()
        stack.start_worker()
        yield stack
    finally:
        if stack.worker:
            _stop(stack.worker)
        if stack.temporal:
            stack.stop_temporal()
        stack.stop_postgres()
        for fake in stack.fakes:
            fake.close()


@pytest_asyncio.fixture
async def fault_pool(faults):
    pool = await create_pool(Settings(database_url=faults.database_url), max_size=4)
    await migrate(pool)
    yield pool
    await pool.close()


async def start_batch(faults, count: int, label: str) -> list:
    client = await connect_when_healthy(Settings(temporal_address=f"127.0.0.1:{faults.temporal_port}"))
    handles = []
    for n in range(count):
        smol_id = new_smol_id()
        payload = Payload(address="GFAULT", prompt=f"{label} {n} {uuid.uuid4().hex[:6]}")
        handles.append(await client.start_workflow(SmolWorkflow.run, SmolInput(smol_id, payload), id=smol_id,
                                                   task_queue="faults"))  # fmt: skip
    return handles


async def finish(faults, handles, timeout: float = 240) -> None:
    """Wait for every smol (reconnecting if the Temporal server restarted meanwhile)."""
    client = await connect_when_healthy(Settings(temporal_address=f"127.0.0.1:{faults.temporal_port}"))
    results = await asyncio.wait_for(
        asyncio.gather(*(client.get_workflow_handle_for(SmolWorkflow.run, h.id).result() for h in handles)), timeout
    )
    assert [r.smol_id for r in results] == [h.id for h in handles]


async def connect_when_healthy(settings: Settings, timeout: float = 60):
    """A server just started listens before its frontend is healthy ("Frontend is not healthy yet")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(settings)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def assert_paid_once_and_consistent(faults, pool, handles, before: dict, cut: dict | None = None) -> None:
    """Each smol of the batch has one successful call per step, the fakes' work since `before` (a `work_done`
    snapshot) lies between the successful calls and the requests recorded, and doctor finds nothing. `cut` allows,
    per step, calls cut by a killed worker: the provider did the work (and, without an idempotency key, charged for
    it) but the worker died before the step's result was saved, so the retry asked again."""
    cut = cut or {}
    succeeded = dict.fromkeys(STEPS_PAID, 0)
    for handle in handles:
        counts = await repo.provider_call_counts(pool, handle.id)
        for step, expected in STEPS_PAID.items():
            assert expected <= counts.get(step, 0) <= expected + cut.get(step, 0), (handle.id, counts)
            succeeded[step] += counts.get(step, 0)
    billed, calls = await _recorded_per_step(pool, handles)
    now = work_done(faults)
    work = {kind: now[kind] - before[kind] for kind in now}

    def within(kind: str, *steps: str) -> bool:
        """Every successful call did its work, and every piece of work was recorded as billable (a dropped request
        or a lost answer is billed too: the caller cannot tell whether the provider did it)."""
        return sum(succeeded[s] for s in steps) <= work[kind] <= sum(billed.get(s, 0) for s in steps)

    assert within("image", "image") and within("workers_ai", "description", "nsfw"), (work, succeeded, billed)
    assert within("lyrics", "lyrics"), (work, succeeded, billed)
    assert succeeded["archive"] <= work["downloads"] <= calls.get("archive", 0), (work, succeeded, calls)  # unbilled
    assert work["songs"] == 2 * len(handles), work  # song submissions carry an idempotency key: never made twice
    assert await examine(pool, FileStore(faults.base / "objects"), running_mints=set()) == []


def work_done(faults) -> dict:
    """What the fakes did so far: images, Workers AI answers, lyrics, songs made, song downloads."""
    return {
        "image": faults.pixellab.done("POST", "/v1/generate-image-pixflux"),
        "workers_ai": faults.workers_ai.done("POST", "/client"),
        "lyrics": faults.songs.done("POST", "/api/lyrics"),
        "songs": faults.songs.songs_created,
        "downloads": faults.songs.done("GET", "/audio/"),
    }


async def faulty_batch(faults, count: int, label: str, **knobs) -> tuple[list, dict]:
    """A batch run to the end with every fake's `knobs` set (e.g. failure_rate=0.3); its handles, and the fakes'
    work before it."""
    faults.reset_fakes()
    for fake in faults.fakes:
        for knob, value in knobs.items():
            setattr(fake, knob, value)
    before = work_done(faults)
    handles = await start_batch(faults, count, label)
    await finish(faults, handles)
    faults.reset_fakes()
    return handles, before


async def test_providers_failing_and_hanging(faults, fault_pool):
    handles, before = await faulty_batch(faults, 6, "flaky providers", failure_rate=0.3, drop_rate=0.1)
    await assert_paid_once_and_consistent(faults, fault_pool, handles, before)


async def _saved(pool, smol_id: str) -> set[str]:
    return {r["step"] for r in await pool.fetch("SELECT step FROM smol_steps WHERE smol_id = $1", smol_id)}


async def _archiving(pool, smol_id: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM smol_songs WHERE smol_id = $1 AND status >= 4", smol_id))


async def _caught_in(pool, handles, before: str, step: str | None) -> bool:
    """Wait until some smol is running `step` (the step after `before`); False if none got there in time."""
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        for handle in handles:
            saved = await _saved(pool, handle.id)
            if step == "archive":
                if await _archiving(pool, handle.id):
                    return True
            elif before in saved and (step == "poll" or step not in saved):
                return True
        await asyncio.sleep(0.05)
    return False


async def test_worker_killed_at_each_step(faults, fault_pool):
    faults.reset_fakes()
    for fake in faults.fakes:
        fake.delay = 0.6  # every step takes long enough to be caught in it
    before = work_done(faults)
    handles = await start_batch(faults, 3, "killed worker")
    # (the step saved last, the step running): a step runs when the one before it is saved and it is not. The safety
    # check and the songs' submission run together (after the lyrics): one kill cuts both.
    steps = [("payload", "image"), ("image", "description"), ("description", "lyrics"), ("lyrics", "nsfw"),
             ("song_ids", "poll"), ("song_ids", "archive")]  # fmt: skip
    for saved_last, step in steps:
        assert await _caught_in(fault_pool, handles, saved_last, step), f"no smol was seen in {step}"
        faults.kill_worker()
        faults.start_worker()
    await finish(faults, handles)
    faults.reset_fakes()
    # each kill may have cut one call of the smols running that step
    cut = dict.fromkeys(["image", "description", "lyrics", "nsfw", "submit", "archive"], len(handles))
    await assert_paid_once_and_consistent(faults, fault_pool, handles, before, cut)


async def test_temporal_server_restarts(faults, fault_pool):
    faults.reset_fakes()
    faults.songs.ready_after = 4.0
    before = work_done(faults)
    handles = await start_batch(faults, 4, "temporal restart")
    while not all(["song_ids" in await _saved(fault_pool, h.id) for h in handles]):
        await asyncio.sleep(0.1)
    faults.stop_temporal()  # history is in its file; the worker keeps retrying its connection
    await asyncio.sleep(2)
    faults.start_temporal()
    await finish(faults, handles)
    faults.songs.ready_after = 1.0
    await assert_paid_once_and_consistent(faults, fault_pool, handles, before)


async def test_postgres_restarts(faults):
    faults.reset_fakes()
    for fake in faults.fakes:
        fake.delay = 0.3
    before = work_done(faults)
    handles = await start_batch(faults, 4, "postgres restart")
    await asyncio.sleep(2)  # the batch is under way
    faults.stop_postgres()  # activities fail with connection errors and are retried
    await asyncio.sleep(3)
    faults.start_postgres()
    await finish(faults, handles)
    faults.reset_fakes()
    pool = await create_pool(Settings(database_url=faults.database_url), max_size=2)
    try:
        await assert_paid_once_and_consistent(faults, pool, handles, before)
    finally:
        await pool.close()


async def _recorded_per_step(pool, handles) -> tuple[dict[str, int], dict[str, int]]:
    """Per step over the batch: the billable requests recorded (a call a killed worker never finished counts one),
    and the calls recorded."""
    rows = await pool.fetch(
        "SELECT step, sum(coalesce(units, 1)) AS billed, count(*) AS calls FROM provider_calls "
        "WHERE smol_id = ANY($1::text[]) GROUP BY step",
        [h.id for h in handles],
    )
    return {row["step"]: row["billed"] for row in rows}, {row["step"]: row["calls"] for row in rows}


async def _paid_per_step(pool, handles) -> dict[tuple[str, str], int]:
    rows = await pool.fetch(
        "SELECT smol_id, step, sum(units) AS n FROM provider_calls WHERE smol_id = ANY($1::text[]) "
        "GROUP BY smol_id, step",
        [h.id for h in handles],
    )
    return {(row["smol_id"], row["step"]): row["n"] for row in rows}


async def test_lost_answers_are_all_counted_and_capped(faults, fault_pool):
    """With 30 % refusals and 10 % lost answers (the work done, the answer dropped) on every provider, every smol
    completes, no step of a smol is paid more than the cap, and the cost recorded is the work the providers did."""
    handles, before = await faulty_batch(faults, 8, "lost answers", failure_rate=0.3, lost_rate=0.1)
    paid = await _paid_per_step(fault_pool, handles)
    assert max(paid.values()) <= PAID_CAP, paid
    steps = {step: sum(n for (_, s), n in paid.items() if s == step) for step in STEPS_PAID}
    now = work_done(faults)
    work = {kind: now[kind] - before[kind] for kind in now}
    assert work["image"] == steps["image"] and work["lyrics"] == steps["lyrics"], (work, steps)
    assert work["workers_ai"] == steps["description"] + steps["nsfw"], (work, steps)
    assert work["songs"] == 2 * len(handles)  # a lost submission is found again by its idempotency key
    assert await examine(fault_pool, FileStore(faults.base / "objects"), running_mints=set()) == []


async def test_a_long_postgres_outage_loses_no_smol(faults):
    """Postgres stopped for minutes mid-batch: every smol accepted before it completes after it returns, each step
    paid for once, nothing missing or orphaned."""
    faults.reset_fakes()
    for fake in faults.fakes:
        fake.delay = 0.3
    before = work_done(faults)
    handles = await start_batch(faults, 10, "long outage")
    await asyncio.sleep(2)  # the batch is under way
    faults.stop_postgres()
    await asyncio.sleep(POSTGRES_OUTAGE_SECONDS)
    faults.start_postgres()
    await finish(faults, handles, timeout=POSTGRES_OUTAGE_SECONDS + 240)
    faults.reset_fakes()
    pool = await create_pool(Settings(database_url=faults.database_url), max_size=2)
    try:
        assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = ANY($1::text[])",
                                   [h.id for h in handles]) == len(handles)  # fmt: skip
        await assert_paid_once_and_consistent(faults, pool, handles, before)
    finally:
        await pool.close()
