"""`smol index`: the search index, for operators."""

import asyncio

import typer
from rich.console import Console
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from contracts.search import BackfillIndexInput
from smol.settings import get_settings
from smol.temporal import connect
from workflows.index_backfill import WORKFLOW_ID, BackfillIndexWorkflow

app = typer.Typer(help="The search index.")
console = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def index(
    ctx: typer.Context,
    backfill: bool = typer.Option(False, "--backfill", help="index the smols that have no index entry yet"),
    every: bool = typer.Option(False, "--all", help="with --backfill: re-index every smol"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for the backfill to finish"),
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if not backfill:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    settings = get_settings()

    async def run() -> int | None:
        client = await connect(settings)
        handle = await client.start_workflow(
            BackfillIndexWorkflow.run, BackfillIndexInput(every=every), id=WORKFLOW_ID, task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # one backfill at a time: join a running one
        )  # fmt: skip
        console.print(f"backfill running as workflow {WORKFLOW_ID} (run {handle.result_run_id})")
        if not wait:
            return None
        return (await handle.result()).indexed  # follows the runs it continued as

    try:
        indexed = asyncio.run(run())
    except (RPCError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] cannot run the backfill on Temporal at {settings.temporal_address}: {exc}")
        raise typer.Exit(1) from None
    if indexed is not None:
        console.print(f"indexed {indexed} smols")
