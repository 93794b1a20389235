"""`smol`: create smols, follow them, and mint tokens for local use."""

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from stellar_sdk import Keypair
from temporalio.service import RPCError, RPCStatusCode

from commands.catalog import app as catalog_app
from commands.doctor import examine
from commands.index import app as index_app
from commands.mint_client import build_mint
from contracts.search_attributes import SMOL_ADDRESS, SMOL_STATUS, SMOL_STEP, STATUS_QUERIES, true_status
from contracts.smol import PauseSignal, ResumeSignal
from smol import api_keys
from smol.db import create_pool, migrate
from smol.errors import StellarRpcError
from smol.settings import get_settings
from smol.stellar_rpc import StellarRpc
from smol.store import open_store
from smol.temporal import connect
from smol.tokens import issue_token
from workflows.smol import SmolWorkflow

app = typer.Typer(help="Smol: durable AI music generation on Temporal.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(catalog_app, name="catalog")
key_app = typer.Typer(help="API keys for programs.", no_args_is_help=True)
app.add_typer(key_app, name="key")
console = Console()
err = Console(stderr=True)
DEFAULT_ADDRESS = "GCLI"
FINAL = {"errored", "terminated"}


def _api(api_url: str | None) -> str:
    return (api_url or f"http://{get_settings().api_host}:{get_settings().api_port}").rstrip("/")


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _get(api_url: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(api_url + path, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api_url}: {exc}")


def _steps_table(smol_id: str, body: dict) -> Table:
    wf = body.get("wf") or {"status": "complete"}
    table = Table(title=f"smol {smol_id[:12]}…  [bold]{wf['status']}[/bold]", title_justify="left")
    table.add_column("step")
    table.add_column("state")
    for step in wf.get("steps", []):
        style = {"done": "green", "reused": "cyan", "running": "yellow", "failed": "red"}.get(step["state"], "dim")
        table.add_row(step["name"], f"[{style}]{step['state']}[/{style}]")
    for song in body.get("kv_do", {}).get("songs", []):
        table.add_row(f"song {song['music_id'][:10]}", f"status {song['status']}" + (" ♪" if song.get("audio") else ""))
    if wf.get("error"):
        table.caption = f"[red]{wf['error']['name']}: {wf['error']['message']}[/red]"
    return table


@app.command()
def token(
    address: str,
    username: str = typer.Option("", help="username claim"),
    premium: bool = typer.Option(False, "--premium", help="may get premium tracks' signed URLs"),
) -> None:
    """Print a session token for ADDRESS, signed with the configured secret."""
    if not address.strip():
        _fail("address must not be empty")
    print(issue_token(get_settings(), address.strip(), username=username, premium=premium))


@key_app.command("create")
def key_create(address: str, name: str = typer.Option("cli", help="what the key is for")) -> None:
    """Make an API key acting as ADDRESS and print it (it is stored only as a hash: this is the one time it shows)."""
    if not address.strip() or not name.strip():
        _fail("address and name must not be empty")

    async def run() -> dict | None:
        pool = await create_pool(get_settings(), min_size=1, max_size=1)
        try:
            await migrate(pool)
            return await api_keys.create(pool, address.strip(), name.strip()[:100])
        finally:
            await pool.close()

    try:
        created = asyncio.run(run())
    except OSError as exc:
        _fail(f"cannot reach the database: {exc}")
    if created is None:
        _fail(f"{address} has {api_keys.MAX_KEYS} live keys already; revoke one first")
    err.print(f"key {created['id']} ({created['name']}) for {address.strip()}: keep it secret, it is not shown again")
    print(created["key"])


@app.command()
def create(
    prompt: str,
    instrumental: bool = typer.Option(False, "--instrumental", help="no vocals"),
    private: bool = typer.Option(False, "--private", help="only you can see it"),
    playlist: str | None = typer.Option(None, help="add it to this playlist"),
    wait: bool = typer.Option(False, "--wait", help="follow the steps live until it is done"),
    address: str = typer.Option(DEFAULT_ADDRESS, envvar="SMOL_ADDRESS", help="creator address (token minted locally)"),
    token_: str | None = typer.Option(None, "--token", envvar="SMOL_TOKEN", help="use this token instead"),
    api_url: str | None = typer.Option(None, envvar="SMOL_API_URL"),
) -> None:
    """Start a smol and print its id."""
    api = _api(api_url)
    bearer = token_ or issue_token(get_settings(), address)
    body = {"prompt": prompt, "instrumental": instrumental, "public": not private}
    if playlist:
        body["playlist"] = playlist
    try:
        response = httpx.post(api + "/", json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api}: {exc}")
    if response.status_code != 200:
        _fail(f"{response.status_code}: {response.text}")
    smol_id = response.text
    print(smol_id)
    if wait:
        _follow(api, smol_id, bearer)


def _follow(api: str, smol_id: str, bearer: str) -> None:
    with Live(console=err, refresh_per_second=4) as live:
        while True:
            response = _get(api, f"/{smol_id}", bearer)
            if response.status_code != 200:
                _fail(f"{response.status_code}: {response.text}")
            body = response.json()
            live.update(_steps_table(smol_id, body))
            status = (body.get("wf") or {}).get("status")
            if "d1" in body:
                break
            if status in FINAL:
                raise typer.Exit(1)
            time.sleep(0.5)
    err.print(f"[green]done[/green]: {api}/song/{body['d1']['Song_1']}.mp3")


@app.command()
def status(smol_id: str, api_url: str | None = typer.Option(None, envvar="SMOL_API_URL"),
           address: str = typer.Option(DEFAULT_ADDRESS, envvar="SMOL_ADDRESS")) -> None:  # fmt: skip
    """Show a smol's steps, songs and state."""
    api = _api(api_url)
    response = _get(api, f"/{smol_id}", issue_token(get_settings(), address))
    if response.status_code == 404:
        _fail(f"no smol {smol_id}")
    if response.status_code != 200:
        _fail(f"{response.status_code}: {response.text}")
    body = response.json()
    console.print(_steps_table(smol_id, body))
    if body.get("paid_calls") is not None:
        paid = ", ".join(f"{provider} {count}" for provider, count in body["paid_calls"].items())
        console.print(f"paid calls: {paid or 'none'}")
    if "d1" in body:
        console.print(f"title: {body['d1']['Title']}  songs: {body['d1']['Song_1']}, {body['d1']['Song_2']}")
    elif (body.get("wf") or {}).get("status") in FINAL:
        raise typer.Exit(1)


# Operator commands: they talk to Temporal directly, like `temporal workflow ...`, and to the API where the
# product's rules live (retry).


def _temporal_call(action):
    """Run `action(client)` against Temporal, turning its errors into clear messages and exit code 1."""
    settings = get_settings()

    async def run():
        try:
            client = await connect(settings)
        except RuntimeError as exc:
            _fail(f"cannot reach Temporal at {settings.temporal_address}: {exc}")
        try:
            return await action(client)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                _fail(f"no such smol: {exc.message}")
            _fail(f"Temporal refused: {exc.message}")

    return asyncio.run(run())


async def _owner(client, smol_id: str) -> str:
    description = await client.get_workflow_handle(smol_id).describe()
    return description.typed_search_attributes.get(SMOL_ADDRESS) or DEFAULT_ADDRESS


@app.command("list")
def list_smols(
    address: str | None = typer.Option(None, help="only this creator's smols"),
    status: str | None = typer.Option(None, help="queued, running, paused, complete, errored or terminated"),
    step: str | None = typer.Option(None, help="current step, e.g. poll"),
    limit: int = typer.Option(20, min=1, max=1000),
) -> None:
    """Smols known to Temporal, newest first, filtered by creator, status or current step. The status combines the
    run's own with Temporal's, so a terminated or timed-out run never shows as running."""
    if status is not None and status not in STATUS_QUERIES:
        _fail(f"--status must be one of: {', '.join(STATUS_QUERIES)}")
    clauses = ["WorkflowType = 'SmolWorkflow'"]
    for name, value in (("SmolAddress", address), ("SmolStep", step)):
        if value is not None:
            clauses.append(f"{name} = '{value.replace(chr(39), '')}'")
    if status is not None:
        clauses.append(STATUS_QUERIES[status])

    async def fetch(client):
        rows = []
        async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
            attributes = execution.typed_search_attributes
            run = _execution_status(execution)
            live = run == "Running"
            rows.append((execution.id, true_status(attributes.get(SMOL_STATUS), run),
                         (attributes.get(SMOL_STEP) or "") if live else "", attributes.get(SMOL_ADDRESS) or "", run,
                         execution.start_time.strftime("%Y-%m-%d %H:%M:%S")))  # fmt: skip
        return rows

    rows = _temporal_call(fetch)
    if not console.is_terminal:  # piped: one tab-separated line per smol, whole ids, for scripts
        for row in rows:
            print("\t".join(row))
        return
    table = Table("id", "status", "step", "address", "run", "started")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _execution_status(execution) -> str:
    """Temporal's status of a run as visibility queries spell it: Running, Completed, Failed, TimedOut, ..."""
    if execution.status is None:
        return "Running"
    return execution.status.name.title().replace("_", "")  # TIMED_OUT -> TimedOut


@app.command()
def watch(smol_id: str, api_url: str | None = typer.Option(None, envvar="SMOL_API_URL")) -> None:
    """Follow a smol's steps live until it is done."""
    address = _temporal_call(lambda client: _owner(client, smol_id))
    _follow(_api(api_url), smol_id, issue_token(get_settings(), address))


def _signal(smol_id: str, action: str, reason: str) -> None:
    async def send(client):
        handle = client.get_workflow_handle(smol_id)
        if action == "pause":
            await handle.signal(SmolWorkflow.pause, PauseSignal(reason))
        elif action == "resume":
            await handle.signal(SmolWorkflow.resume, ResumeSignal(reason))
        elif action == "cancel":
            await handle.cancel()
        else:
            await handle.terminate(reason=reason or "terminated with the smol CLI")

    _temporal_call(send)
    console.print(f"{action}: sent to {smol_id}")


@app.command()
def pause(smol_id: str, reason: str = typer.Option("", help="shown in the history")) -> None:
    """Hold a smol at its next step boundary."""
    _signal(smol_id, "pause", reason)


@app.command()
def resume(smol_id: str, reason: str = typer.Option("", help="shown in the history")) -> None:
    """Let a paused smol go on."""
    _signal(smol_id, "resume", reason)


@app.command()
def cancel(smol_id: str) -> None:
    """Stop a smol: the running step is cancelled and everything it made is removed."""
    _signal(smol_id, "cancel", "")


@app.command()
def terminate(smol_id: str, reason: str = typer.Option("", help="shown in the history")) -> None:
    """End a smol's run at once, with no clean-up (use cancel unless the run is stuck)."""
    _signal(smol_id, "terminate", reason)


@app.command()
def retry(smol_id: str, api_url: str | None = typer.Option(None, envvar="SMOL_API_URL")) -> None:
    """Run a failed smol again under the same id, reusing its finished steps (through the API)."""
    address = _temporal_call(lambda client: _owner(client, smol_id))
    api = _api(api_url)
    try:
        response = httpx.post(
            f"{api}/retry/{smol_id}",
            headers={"Authorization": f"Bearer {issue_token(get_settings(), address)}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api}: {exc}")
    if response.status_code != 200:
        _fail(f"{response.status_code}: {response.text}")
    console.print(f"retrying {smol_id}")


@app.command()
def mint(
    smol_ids: list[str] = typer.Argument(..., help="one id mints with coin_it, several with coin_them"),
    secret: str = typer.Option(..., envvar="SMOL_MINT_SECRET", help="the minting account's secret key (S...)"),
    wait: bool = typer.Option(False, "--wait", help="wait until the tokens are recorded"),
    api_url: str | None = typer.Option(None, envvar="SMOL_API_URL"),
) -> None:
    """Build and sign a mint transaction for a classic account and send it to the API."""
    settings = get_settings()
    try:
        keypair = Keypair.from_secret(secret)
    except Exception:
        _fail("--secret is not a Stellar secret key (S...)")
    if not settings.contract_id or not settings.issuer:
        _fail("set SMOL_CONTRACT_ID and SMOL_MINT_ISSUER (the contract and the issuer of the smol assets)")
    batch = len(smol_ids) > 1

    async def build() -> str:
        async with httpx.AsyncClient(timeout=30) as http:
            return await build_mint(
                StellarRpc(http, settings.stellar_rpc_url), secret, smol_ids, contract_id=settings.contract_id,
                issuer=settings.issuer, passphrase=settings.stellar_network_passphrase, batch=batch,
                auth_ledgers=settings.mint_auth_ledgers,
            )  # fmt: skip

    try:
        xdr = asyncio.run(build())
    except (StellarRpcError, ValueError) as exc:
        _fail(f"could not build the transaction: {exc}")
    api = _api(api_url)
    bearer = issue_token(settings, keypair.public_key)
    path, body = ("/mint", {"xdr": xdr, "ids": smol_ids}) if batch else (f"/mint/{smol_ids[0]}", {"xdr": xdr})
    try:
        response = httpx.post(api + path, json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api}: {exc}")
    if response.status_code != 202:
        _fail(f"{response.status_code}: {response.text}")
    mint_id = response.json()["mint_id"]
    print(f"mint {mint_id} started for {', '.join(smol_ids)}")
    if not wait:
        return
    pending = list(smol_ids)
    while pending:
        time.sleep(1)
        for smol_id in list(pending):
            detail = _get(api, f"/{smol_id}", bearer).json()
            progress = detail.get("mint") or {}
            if progress.get("status") == "failed":
                _fail(f"mint {mint_id} failed: {progress.get('error')}")
            token = (detail.get("d1") or {}).get("Mint_Token")
            if token:
                print(f"{smol_id} token {token} amm {detail['d1']['Mint_Amm']}")
                pending.remove(smol_id)


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="one JSON object per problem")) -> None:
    """Check that rows and objects agree (missing or orphaned media, rows of deleted smols, stuck mints); exit 1
    when anything is wrong."""
    settings = get_settings()

    async def run():
        running = failed = None
        try:
            client = await connect(settings)
            query = "WorkflowType = 'MintWorkflow' AND ExecutionStatus = 'Running'"
            running = {w.id.removeprefix("mint-") async for w in client.list_workflows(query)}
            failed = await _failed_smols(client)
        except Exception as exc:  # the row and object checks do not need Temporal
            err.print(f"[yellow]warning:[/yellow] Temporal not reachable, mints and failed runs not checked ({exc})")
        pool = await create_pool(settings, max_size=2)
        store = open_store(settings)
        try:
            return await examine(pool, store, running, failed)
        finally:
            await store.close()
            await pool.close()

    try:
        problems = asyncio.run(run())
    except OSError as exc:
        _fail(f"cannot reach the database: {exc}")
    for problem in problems:
        print(json.dumps(asdict(problem)) if as_json else f"{problem.kind}\t{problem.subject}\t{problem.detail}")
    if not as_json:
        err.print(f"{len(problems)} problem(s)" if problems else "[green]rows and objects are consistent[/green]")
    raise typer.Exit(1 if problems else 0)


async def _failed_smols(client) -> set[str]:
    """Smols whose latest run failed or timed out (a later run that is still going or finished does not count)."""
    smols = "WorkflowType = 'SmolWorkflow'"
    failed = {w.id async for w in client.list_workflows(f"{smols} AND {STATUS_QUERIES['errored']}")}
    if not failed:
        return set()
    later = f"{smols} AND ExecutionStatus IN ('Running', 'Completed')"
    return failed - {w.id async for w in client.list_workflows(later)}


def main() -> None:
    """The `smol` command. It leaves without the interpreter's teardown: the Temporal client's Rust threads can
    abort a finishing interpreter (temporalio/sdk-python#300, "PyGILState_Release ... finalizing")."""
    try:
        app()  # standalone: always ends in SystemExit
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
