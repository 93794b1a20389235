"""Run SmolWorkflow, MintWorkflow and their activities until SIGTERM or SIGINT, then finish running tasks and stop."""

import asyncio
import gc
import logging
import signal
from datetime import timedelta

import httpx
from temporalio.worker import UnsandboxedWorkflowRunner

from activities.catalog import CatalogActivities
from activities.failures import smol_worker
from activities.mint import MintActivities
from activities.pipeline import SmolActivities
from activities.providers.registry import build_providers
from commands.catalog import ensure_schedule_at_start
from smol.db import create_pool, migrate
from smol.logs import configure
from smol.settings import WORKER_SECRETS, Settings, get_settings
from smol.stellar_rpc import StellarRpc
from smol.store import open_store
from smol.temporal import connect, ensure_search_attributes, metrics_runtime
from workflows.catalog import CatalogDayWorkflow, PremiumTrackWorkflow
from workflows.index_backfill import BackfillIndexWorkflow
from workflows.mint import MintWorkflow
from workflows.smol import SmolWorkflow

log = logging.getLogger("smol.worker")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    pool = await create_pool(settings)
    store = open_store(settings)
    timeout = httpx.Timeout(settings.provider_timeout, connect=min(settings.provider_timeout, 10.0))
    http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    catalog = CatalogActivities(store, settings, http)
    try:
        await migrate(pool)
        activities = SmolActivities(
            pool,
            store,
            build_providers(settings, store, http),
            poll_interval=settings.song_poll_interval,
            poll_window=settings.song_poll_window,
            song_stall_seconds=settings.song_stall_seconds,
            webhook_secret=settings.webhook_secret.get_secret_value(),
            webhooks_allow_private=settings.webhooks_allow_private,
            max_paid_calls=settings.max_paid_calls_per_step,
        )
        minting = MintActivities(pool, StellarRpc(http, settings.stellar_rpc_url, settings.stellar_relay_url), settings)
        runtime = metrics_runtime(settings.worker_metrics_address) if settings.worker_metrics_address else None
        client = await connect(settings, runtime=runtime)
        await ensure_search_attributes(client, settings.temporal_namespace)
        if settings.catalog_schedule:
            await ensure_schedule_at_start(client, settings)
        worker = smol_worker(client, task_queue=settings.task_queue,
            workflows=[SmolWorkflow, MintWorkflow, BackfillIndexWorkflow, CatalogDayWorkflow, PremiumTrackWorkflow],
            activities=activities.all() + minting.all() + catalog.all(),
            graceful_shutdown_timeout=timedelta(seconds=10),
            max_cached_workflows=settings.worker_cached_workflows,
            max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
            **({} if settings.workflow_sandbox else {"workflow_runner": UnsandboxedWorkflowRunner()}),
        )
        gc.collect()
        gc.freeze()  # (what startup loaded lives as long as the process: full collections need not walk it; api/app.py)
        async with worker:
            log.info("worker polling task queue %r on %s (workflow sandbox %s, %d runs cached, %d workflow tasks at "
                     "once)", settings.task_queue, settings.temporal_address,
                     "on" if settings.workflow_sandbox else "off", settings.worker_cached_workflows,
                     settings.worker_workflow_tasks)  # fmt: skip
            await stop.wait()
            log.info("worker stopping")
    finally:
        catalog.close()
        await http.aclose()
        await store.close()
        await pool.close()


def main() -> None:
    settings = get_settings()
    # A worker is "on loopback" when the Temporal server and the database it works with are on this machine.
    settings.refuse_dev_secrets(settings.temporal_host(), settings.database_host(), uses=WORKER_SECRETS)
    configure(settings.log_level, settings.log_format)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
