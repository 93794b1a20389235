"""`smol`: create smols, follow them, and mint tokens for local use."""

import time

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from smol.settings import get_settings
from smol.tokens import issue_token

app = typer.Typer(help="Smol: durable AI music generation on Temporal.", no_args_is_help=True)
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
def token(address: str, username: str = typer.Option("", help="username claim")) -> None:
    """Print a session token for ADDRESS, signed with the configured secret."""
    if not address.strip():
        _fail("address must not be empty")
    print(issue_token(get_settings(), address.strip(), username=username))


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
    if "d1" in body:
        console.print(f"title: {body['d1']['Title']}  songs: {body['d1']['Song_1']}, {body['d1']['Song_2']}")
    elif (body.get("wf") or {}).get("status") in FINAL:
        raise typer.Exit(1)
