"""`smol catalog`: the SoundFlow catalog's schedule, runs, backfills, validation and premium tracks."""

import asyncio
import dataclasses
import datetime as dt
import logging
import re
from datetime import UTC, timedelta

import typer
from rich.console import Console
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.catalog import start_premium
from contracts.catalog import PREMIUM_MODELS, CatalogDayInput, premium_input
from smol.settings import Settings, get_settings
from smol.temporal import connect
from workflows.catalog import CatalogDayWorkflow, PremiumTrackWorkflow, day_workflow_id

app = typer.Typer(help="The SoundFlow catalog: daily free tracks per category, premium on demand.",
                  no_args_is_help=True)
console = Console()
err = Console(stderr=True)
HOUR, MINUTE = 2, 10  # 02:10 UTC
log = logging.getLogger("smol.catalog")


def daily_schedule(settings: Settings, seconds: int | None = None, task_queue: str | None = None) -> Schedule:
    """Every day at 02:10 UTC, a CatalogDayWorkflow for that day; days missed while the cluster was down are made
    when it is back (within the catch-up window), one after another."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CatalogDayWorkflow.run, CatalogDayInput(seconds=seconds or settings.catalog_track_seconds),
            id="catalog-day", task_queue=task_queue or settings.task_queue,
        ),  # fmt: skip
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(HOUR)], minute=[ScheduleRange(MINUTE)])],
            time_zone_name="UTC",
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ALL,
            catchup_window=timedelta(hours=settings.catalog_catchup_hours),
        ),
    )


async def ensure_schedule(client: Client, settings: Settings, schedule_id: str | None = None, **options) -> str:
    """Create the daily schedule, or bring an existing one's spec, action and policy up to date (keeping whether it
    is paused). Returns "created" or "updated"."""
    schedule_id = schedule_id or settings.catalog_schedule_id
    wanted = daily_schedule(settings, **options)
    try:
        await client.create_schedule(schedule_id, wanted)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def update(current):
        schedule = current.description.schedule
        return ScheduleUpdate(
            dataclasses.replace(schedule, action=wanted.action, spec=wanted.spec, policy=wanted.policy)
        )

    await client.get_schedule_handle(schedule_id).update(update)
    return "updated"


async def ensure_schedule_at_start(client: Client, settings: Settings) -> None:
    """The worker's call: a schedule Temporal refuses (permissions, an old server) is logged, never fatal."""
    try:
        outcome = await ensure_schedule(client, settings)
    except RPCError as exc:
        log.warning("catalog schedule %s not ensured: %s", settings.catalog_schedule_id, exc.message)
        return
    log.info("catalog schedule %s %s", settings.catalog_schedule_id, outcome)


async def backfill(client: Client, schedule_id: str, first: dt.date, last: dt.date) -> None:
    """Have the schedule make the days first..last (each run makes the day it was scheduled for)."""
    start = dt.datetime.combine(first, dt.time(HOUR, MINUTE), UTC) - timedelta(seconds=1)
    end = dt.datetime.combine(last, dt.time(HOUR, MINUTE), UTC) + timedelta(seconds=1)
    await client.get_schedule_handle(schedule_id).backfill(
        ScheduleBackfill(start, end, overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    )


def _fail(message: str):
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _date(value: str, option: str) -> dt.date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    _fail(f"{option} must be a date YYYY-MM-DD, not {value!r}")


def _temporal(action):
    settings = get_settings()

    async def run():
        try:
            client = await connect(settings)
        except RuntimeError as exc:
            _fail(f"cannot reach Temporal at {settings.temporal_address}: {exc}")
        try:
            return await action(client, settings)
        except RPCError as exc:
            _fail(f"Temporal refused: {exc.message}")

    return asyncio.run(run())


@app.command()
def schedule() -> None:
    """Create or update the daily schedule (the worker also does it when it starts)."""

    async def run(client, settings):
        outcome = await ensure_schedule(client, settings)
        console.print(f"schedule {settings.catalog_schedule_id} {outcome}: every day at 02:10 UTC, "
                      f"catch-up window {settings.catalog_catchup_hours:g} h")  # fmt: skip

    _temporal(run)


@app.command("run")
def run_day(
    date: str = typer.Option(None, "--date", help="YYYY-MM-DD (default today, UTC)"),
    seconds: int = typer.Option(None, "--seconds", min=5, max=600, help="track length instead of the plan's"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for the day to be made"),
) -> None:
    """Make one day's free tracks now (nothing new if the day is already made)."""
    day = _date(date, "--date") if date else dt.datetime.now(UTC).date()

    async def run(client, settings):
        workflow_id = day_workflow_id(day.isoformat())
        try:
            handle = await client.start_workflow(
                CatalogDayWorkflow.run, CatalogDayInput(day.isoformat(), seconds), id=workflow_id,
                task_queue=settings.task_queue, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )  # fmt: skip
        except WorkflowAlreadyStartedError:
            console.print(f"{workflow_id}: already made or running; nothing new started")
            return
        console.print(f"started {workflow_id}")
        if not wait:
            return
        try:
            result = await handle.result()
        except WorkflowFailureError as exc:
            _fail(f"{workflow_id} failed: {exc.cause}")
        for track in result.tracks:
            made = f"rendered in {track.seconds:.2f} s" if track.rendered else "already there"
            console.print(f"  {track.entry_id}: {made}")
        console.print(f"catalogs: {result.entries} entries")

    _temporal(run)


@app.command("backfill")
def backfill_days(
    first: str = typer.Option(..., "--from", help="first day, YYYY-MM-DD"),
    last: str = typer.Option(..., "--to", help="last day, YYYY-MM-DD"),
) -> None:
    """Have the schedule make every day from --from to --to."""
    start, end = _date(first, "--from"), _date(last, "--to")
    if end < start:
        _fail("--to is before --from")

    async def run(client, settings):
        await backfill(client, settings.catalog_schedule_id, start, end)
        console.print(f"backfill of {start}..{end} ({(end - start).days + 1} days) handed to the schedule")

    _temporal(run)


@app.command()
def validate(
    date: list[str] = typer.Option(None, "--date", help="decode only these days' audio (default: all)"),
) -> None:
    """Check the catalogs: schema, the five kinds of file agree, every object exists, decodes and is as long as its
    entry says."""
    from activities.soundflow.catalog import validate as check
    from smol.store import open_store

    dates = [_date(d, "--date").isoformat() for d in date] if date else None

    async def run():
        store = open_store(get_settings())
        try:
            return await check(store, dates)
        finally:
            await store.close()

    result = asyncio.run(run())
    for problem in result.problems:
        print(problem)
    if result.problems:
        _fail(f"{len(result.problems)} problem(s) in {result.entries} entries")
    console.print(f"[green]catalogs valid[/green]: {result.entries} entries, {result.decoded} decoded")


def _pause(paused: bool, note: str) -> None:
    async def run(client, settings):
        handle = client.get_schedule_handle(settings.catalog_schedule_id)
        await (handle.pause(note=note or "paused with smol catalog pause") if paused
               else handle.unpause(note=note or "unpaused with smol catalog unpause"))  # fmt: skip
        console.print(f"schedule {settings.catalog_schedule_id} {'paused' if paused else 'unpaused'}")

    _temporal(run)


@app.command()
def pause(note: str = typer.Option("", help="shown in the Web UI")) -> None:
    """Stop the daily runs (the schedule stays, with this note)."""
    _pause(True, note)


@app.command()
def unpause(note: str = typer.Option("", help="shown in the Web UI")) -> None:
    """Resume the daily runs."""
    _pause(False, note)


@app.command()
def premium(
    category: str = typer.Option(..., "--category", help="Deep Work | Study | Relax | Nature | Flow State (or slug)"),
    track_id: str = typer.Option(..., "--track-id", help="e.g. custom_focus_1"),
    duration: int = typer.Option(180, "--duration", help="seconds"),
    model: str = typer.Option(PREMIUM_MODELS[0], "--model", help=" | ".join(PREMIUM_MODELS)),
    wait: bool = typer.Option(False, "--wait", help="wait until it is stored and catalogued"),
) -> None:
    """Make a premium track on demand (premium provider chain: SMOL_CATALOG_PREMIUM_PROVIDERS)."""
    try:
        data = premium_input(category, track_id, duration, model, dt.datetime.now(UTC).date().isoformat())
    except ValueError as exc:
        _fail(str(exc))

    async def run(client, settings):
        workflow_id = await start_premium(client, settings, data)
        console.print(f"premium workflow {workflow_id}")
        if wait:
            try:
                result = await client.get_workflow_handle_for(PremiumTrackWorkflow.run, workflow_id).result()
            except WorkflowFailureError as exc:
                _fail(f"{workflow_id} failed: {exc.cause}")
            console.print(f"{result.entry_id} made by {result.provider}: {result.object_key}")

    _temporal(run)
