"""Smols: starting, reading, retrying and deleting them. The one read model of a smol for clients (`GET /{id}` and
its events): the finished row, or the workflow's view while it is made (contracts/views.py, shared with the status
query)."""

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.metrics import RATE_LIMITED, SMOLS_STARTED, WORKFLOW_VIEWS
from api.services import progress
from api.views import when, with_absolute_audio
from contracts.search_attributes import SMOL_ADDRESS, SMOL_STATUS
from contracts.smol import LoadStepsResult, PauseSignal, Payload, ResumeSignal, SmolInput
from contracts.views import payload_view, smol_view
from smol import mints, repo, steps
from smol.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable, StartUncertain, TooManyRequests
from smol.ids import new_smol_id
from smol.temporal import (
    QUERY_TIMEOUT,
    RPC_TIMEOUT,
    describe,
    is_running,
    start_workflow,
    temporal_down,
    unavailable_if_down,
)
from workflows.smol import SmolWorkflow
from workflows.summary import start_summary

log = logging.getLogger("smol.api")
CLOSED_AS = {"COMPLETED": "complete", "FAILED": "errored", "TIMED_OUT": "errored", "CANCELED": "terminated",
             "TERMINATED": "terminated"}  # fmt: skip
VIEW_SECONDS = 0.4
IN_PROGRESS = ("queued", "running", "paused")
OWNER_ONLY = {"title", "metadata"}
_views: dict[str, tuple[float, asyncio.Future]] = {}


async def take_run_slot(pool, settings, address: str) -> None:
    """Count one new run (a new smol or a retry) for the address, or 429 past SMOL_CREATES_PER_MINUTE."""
    wait = await repo.take_create_slot(pool, address, settings.creates_per_minute, 60)
    if wait is not None:
        RATE_LIMITED.inc()
        raise TooManyRequests(f"at most {settings.creates_per_minute} new runs a minute; try again shortly", wait)


@contextlib.asynccontextmanager
async def slot_given_back_unless_started(pool, address: str):
    """Around starting a run whose slot was taken: when Temporal was away (nothing started) or the run was already
    going, the slot is given back, so that retrying through an outage does not end in 429s. (A new smol's id is
    fresh: no other start has it, and the SDK's own retries of a start answer with its run, not that error.)"""
    try:
        yield
    except StartUncertain:
        raise  # (it may have started: the slot stays taken)
    except (ServiceUnavailable, WorkflowAlreadyStartedError):
        await repo.give_back_create_slot(pool, address)
        raise


def _owned_by(payload: Payload) -> TypedSearchAttributes:
    """Set at the start, so a run no worker has picked up yet is already listed as its creator's (`GET /created`)."""
    return TypedSearchAttributes([SearchAttributePair(SMOL_ADDRESS, payload.address),
                                  SearchAttributePair(SMOL_STATUS, "queued")])


async def create(temporal: Client, settings, payload: Payload) -> str:
    """Start the smol's run (the caller took its run slot: `take_run_slot`); its new id."""
    smol_id = new_smol_id()
    await start_workflow(temporal, SmolWorkflow.run, SmolInput(smol_id=smol_id, payload=payload), id=smol_id,
                         settings=settings, summary=start_summary(payload),
                         search_attributes=_owned_by(payload))  # fmt: skip
    SMOLS_STARTED.inc()
    return smol_id


async def list_created(pool, temporal: Client, address: str, status: str | None, metadata: dict[str, str],
                       limit: int, after) -> list[dict]:  # fmt: skip
    """The caller's smols, newest first, `limit + 1` of them after the keyset cursor `after`: finished ones (no
    status, or "complete") from their rows; "running" (queued and paused included) and "failed" ones from Temporal's
    visibility (SmolAddress and the run's status: Postgres cannot tell a smol being made from one that failed), with
    their title, songs and metadata from the saved steps. `metadata`: the payload's metadata must hold these pairs."""
    if status in (None, "complete"):
        condition, args = "s.address = $1", [address]
        if metadata:
            condition += (" AND EXISTS (SELECT 1 FROM smol_steps m WHERE m.smol_id = s.id AND m.step = 'payload' "
                          "AND m.data->'metadata' @> $2::jsonb)")  # fmt: skip
            args.append(metadata)
        rows = [dict(row) for row in await repo._page_of(pool, "smols s", condition, args, limit, after)]
        saved = await steps.load_many(pool, [row["id"] for row in rows])
        return [{**row, "status": "complete", "metadata": _metadata(saved.get(row["id"]))} for row in rows]
    if not _VISIBILITY_SAFE.match(address):
        return []  # not an address we issue: it could not be quoted in a visibility query
    mine = f"WorkflowType = 'SmolWorkflow' AND SmolAddress = '{address}'"
    running = await _runs(temporal, f"{mine} AND ExecutionStatus = 'Running'")
    runs = running if status == "running" else await _runs(temporal, f"{mine} AND ExecutionStatus IN ('Failed', "
                                                                     "'TimedOut')")  # fmt: skip
    if status == "failed":
        runs = {smol_id: at for smol_id, at in runs.items() if smol_id not in running}
    gone = {r["id"] for r in await pool.fetch(
        "SELECT id FROM smols WHERE id = ANY($1::text[]) UNION SELECT id FROM deleted_smols WHERE id = ANY($1::text[])",
        list(runs),
    )}  # fmt: skip
    saved = await steps.load_many(pool, [smol_id for smol_id in runs if smol_id not in gone])
    items = []
    for smol_id, created_at in runs.items():
        made = saved.get(smol_id)
        if smol_id in gone or not (metadata.items() <= (_metadata(made) or {}).items()):
            continue
        if after is not None and (created_at, smol_id) >= after:
            continue
        title = (made.payload and made.payload.title) or (made.lyrics and made.lyrics.title) if made else None
        song_ids = (made.song_ids if made else None) or [""]
        items.append({"id": smol_id, "title": title or "", "song_1": song_ids[0], "mint_token": None,
                      "mint_amm": None, "created_at": created_at, "status": status,
                      "metadata": _metadata(made)})  # fmt: skip
    items.sort(key=lambda item: (item["created_at"], item["id"]), reverse=True)
    return items[:limit]


_VISIBILITY_SAFE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_LISTED_RUNS = 1000


async def _runs(temporal: Client, query: str) -> dict[str, datetime]:
    """{smol id: when its earliest run matching `query` started (UTC, whole seconds)}."""
    started: dict[str, datetime] = {}
    with unavailable_if_down():
        async for execution in temporal.list_workflows(query, limit=MAX_LISTED_RUNS, rpc_timeout=RPC_TIMEOUT):
            at = execution.start_time.astimezone(UTC).replace(tzinfo=None, microsecond=0)
            started[execution.id] = min(at, started.get(execution.id, at))
    return started


def _metadata(saved: LoadStepsResult | None) -> dict | None:
    return saved.payload.metadata if saved and saved.payload else None


def _closed_as(description) -> str | None:
    return None if description is None or description.status is None else CLOSED_AS.get(description.status.name)


def _finished_view(saved, song_rows) -> dict:
    return smol_view(saved, steps.songs_from(song_rows))


async def _shared_workflow_view(temporal, pool, smol_id: str) -> tuple[dict, dict]:
    """The workflow view of a smol, fetched at most once per VIEW_SECONDS however many clients poll `GET /{id}` or
    watch its events at once (visibility is still checked per viewer by the caller). Retry and delete evict it here;
    another API process may show the old view for up to VIEW_SECONDS."""
    now = time.monotonic()
    cached = _views.get(smol_id)
    if cached is None or now - cached[0] > VIEW_SECONDS:
        if len(_views) > 10_000:
            for key in [k for k, (at, _) in _views.items() if now - at > VIEW_SECONDS]:
                del _views[key]
        cached = (now, asyncio.ensure_future(_workflow_view(temporal, pool, smol_id)))
        _views[smol_id] = cached
    return await asyncio.shield(cached[1])


async def _workflow_view(temporal, pool, smol_id: str) -> tuple[dict, dict]:
    """(kv_do, wf) of a smol without a row: from the workflow's query, else from the saved steps (and the payload its
    run was started with, if it saved none)."""
    WORKFLOW_VIEWS.inc()
    try:
        description = await describe(temporal, smol_id)
    except ServiceUnavailable:
        saved = await steps.load(pool, smol_id)
        if saved.payload is None and saved.image_key is None:
            raise
        return _finished_view(saved, await repo.songs_of(pool, smol_id)), {"status": "unknown"}
    if description is None:
        raise NotFound("smol not found")
    closed_as = _closed_as(description)
    saved = await steps.load(pool, smol_id)
    nothing_saved = saved.payload is None and saved.image_key is None
    if closed_as == "complete" or (
        closed_as and nothing_saved and (closed_as == "terminated" or await repo.was_deleted(pool, smol_id))
    ):
        raise NotFound("smol not found")  # finished without a row, or ended with no data: deleted or discarded
    handle = temporal.get_workflow_handle(smol_id)
    try:
        status = await handle.query(SmolWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        kv_do = status.kv_do
        wf = {"status": closed_as if closed_as == "terminated" else status.status, "current_step": status.current_step,
              "steps": [vars(s) for s in status.steps]}  # fmt: skip
        if status.error:
            wf["error"] = status.error
    except (RPCError, WorkflowQueryFailedError):
        kv_do = _finished_view(saved, await repo.songs_of(pool, smol_id))
        if "payload" not in kv_do and (payload := await started_payload(temporal, smol_id)) is not None:
            kv_do["payload"] = payload_view(payload)
        wf = {"status": closed_as or "unknown"}
        if closed_as == "errored":
            wf["error"] = await _failure_of(temporal.get_workflow_handle(smol_id, run_id=description.run_id))
    if "nsfw" not in kv_do and saved.nsfw is not None:  # a retry run before it loaded the saved verdict
        kv_do["nsfw"] = asdict(saved.nsfw)
    return kv_do, wf


async def started_payload(temporal, smol_id: str) -> Payload | None:
    """The payload the smol's latest run was started with (the input in the first event of its history), decoded by
    the client's data converter (and so its codec); None if Temporal knows no such run."""
    with unavailable_if_down():
        try:
            events = temporal.get_workflow_handle(smol_id).fetch_history_events(page_size=1, rpc_timeout=RPC_TIMEOUT)
            async for event in events:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                [started] = await temporal.data_converter.decode(payloads, [SmolInput])
                return started.payload
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
    return None


async def _failure_of(handle: WorkflowHandle) -> dict:
    """Why this (closed) run failed; an unreadable failure (Temporal away, a payload under a retired codec key) is
    reported as such rather than failing the request."""
    try:
        await handle.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
    except WorkflowFailureError as exc:
        cause = exc.cause
        return {
            "name": getattr(cause, "type", None) or type(cause).__name__,
            "message": getattr(cause, "message", str(cause)),
        }
    except Exception as exc:  # noqa: BLE001 - the status is known; only the reason could not be read
        log.warning("the failure of smol %s could not be read: %r", handle.id, exc)
        return {"name": "Unknown", "message": "the reason could not be read just now"}
    return {"name": "Unknown", "message": "the run ended without a result"}


async def detail(pool, temporal, smol_id: str, viewer: str | None, base: str, count_view: bool = False) -> dict:
    """The GET /{id} body: the finished row's shape, or the workflow's while in progress; only the progress when the
    viewer may not see its content (repo.visible_in_progress). NotFound if the viewer may not see it at all."""
    row = await repo.smol_page(pool, smol_id, viewer, count_view)
    if row["id"] is None and not row["stored"]:
        kv_do, wf = await _shared_workflow_view(temporal, pool, smol_id)
        if wf["status"] != "complete":
            return await _in_progress_body(pool, smol_id, viewer, base, kv_do, wf)
        row = await repo.smol_page(pool, smol_id, viewer, count_view)  # stored since the first read: it is there now
        if row["id"] is None and not row["stored"]:
            return await _in_progress_body(pool, smol_id, viewer, base, kv_do, wf)
    if row["id"] is None:  # finished, and not for this viewer
        raise NotFound("smol not found")
    d1 = {
        "Id": row["id"], "Title": row["title"], "Song_1": row["song_1"], "Song_2": row["song_2"],
        "Created_At": when(row["created_at"]), "Public": int(row["public"]),
        "Instrumental": int(row["instrumental"]), "Plays": row["plays"], "Views": row["views"],
        "Address": row["address"], "Mint_Token": row["mint_token"], "Mint_Amm": row["mint_amm"],
    }  # fmt: skip
    kv_do = _for_viewer(_finished_view(steps.read(row["steps"]), row["songs"]), row["address"] == viewer)
    body = {"kv_do": with_absolute_audio(kv_do, base), "d1": d1, "liked": row["liked"]}
    if (mint := row["mint"]) is not None:
        body["mint"] = {"id": mint["id"], "status": mint["status"], "tx_hash": mint["tx_hash"],
                        "error": mint["error"]}  # fmt: skip
    if row["address"] == viewer:
        body["paid_calls"] = await repo.paid_calls(pool, smol_id)
    return body


async def _in_progress_body(pool, smol_id: str, viewer: str | None, base: str, kv_do: dict, wf: dict) -> dict:
    if not repo.visible_in_progress(kv_do, viewer):
        return {"kv_do": {"image": kv_do["image"]}, "wf": {"status": wf["status"]}, "liked": False}
    owner = viewer is not None and (kv_do.get("payload") or {}).get("address") == viewer
    body = {"kv_do": with_absolute_audio(_for_viewer(kv_do, owner), base), "wf": wf,
            "liked": await repo.is_liked(pool, smol_id, viewer)}  # fmt: skip
    if wf["status"] in IN_PROGRESS:
        body["progress"] = await progress.estimate(pool, smol_id, kv_do, wf)
    if owner:
        body["paid_calls"] = await repo.paid_calls(pool, smol_id)
    return body


def _for_viewer(kv_do: dict, owner: bool) -> dict:
    """The creator's title and metadata are shown to the creator only."""
    payload = kv_do.get("payload")
    if owner or not payload or not OWNER_ONLY & payload.keys():
        return kv_do
    return {**kv_do, "payload": {k: v for k, v in payload.items() if k not in OWNER_ONLY}}


async def _check_owner(pool, temporal, smol_id: str, address: str) -> None:
    """NotFound unless `address` made this smol: by its row or saved payload, else (a run that has not saved its
    payload yet, or failed before it could) by the payload its run was started with."""
    owner = await repo.smol_owner(pool, smol_id)
    if owner is None and not await repo.was_deleted(pool, smol_id):
        payload = await started_payload(temporal, smol_id)
        owner = payload.address if payload else None
    if owner != address:
        raise NotFound("smol not found")


async def retry(pool, temporal, settings, smol_id: str, address: str) -> str:
    """Run a failed smol again under the same id, from its saved steps."""
    await _check_owner(pool, temporal, smol_id, address)
    if await repo.get_smol(pool, smol_id) is not None:
        raise Conflict("this smol is finished; there is nothing to retry")
    description = await describe(temporal, smol_id)
    if is_running(description):
        raise Conflict("this smol is still being made")
    saved = await steps.load(pool, smol_id)
    payload = saved.payload
    if payload is None and _closed_as(description) == "errored":
        payload = await started_payload(temporal, smol_id)  # it failed before saving anything: its input has it all
    if payload is None:  # a run that ended without data (cancelled, or deleted): nothing to retry
        raise NotFound("smol not found")
    title = saved.lyrics.title if saved.lyrics else None
    await take_run_slot(pool, settings, address)  # a retry run may pay for its steps again: same limit
    try:
        async with slot_given_back_unless_started(pool, address):
            await start_workflow(temporal, SmolWorkflow.run, SmolInput(smol_id=smol_id, payload=payload, resume=True),
                             id=smol_id, settings=settings, summary=start_summary(payload, title),
                             search_attributes=_owned_by(payload))  # fmt: skip
    except WorkflowAlreadyStartedError:
        raise Conflict("this smol is still being made") from None
    _views.pop(smol_id, None)  # the next look sees the new run
    return smol_id


async def control(pool, temporal, smol_id: str, address: str, action: str) -> None:
    """The owner pauses (at the next step boundary), resumes or cancels (everything made is removed) a smol that is
    being made; Conflict when it is not."""
    await _check_owner(pool, temporal, smol_id, address)
    if await repo.get_smol(pool, smol_id) is not None:  # (its run may still be indexing it: that is not making it)
        raise Conflict("this smol is finished")
    if not is_running(await describe(temporal, smol_id)):
        raise Conflict("this smol is not being made")
    handle = temporal.get_workflow_handle(smol_id)
    with unavailable_if_down():
        try:
            if action == "pause":
                await handle.signal(SmolWorkflow.pause, PauseSignal("paused by its owner"), rpc_timeout=RPC_TIMEOUT)
            elif action == "resume":
                await handle.signal(SmolWorkflow.resume, ResumeSignal("resumed by its owner"), rpc_timeout=RPC_TIMEOUT)
            else:
                await handle.cancel(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # it ended in the meantime
                raise Conflict("this smol is not being made") from None
            raise
    _views.pop(smol_id, None)


async def toggle_visibility(pool, smol_id: str, address: str) -> None:
    row = await repo.get_smol(pool, smol_id)
    if row is None or row["address"] != address:
        raise NotFound("smol not found")
    if not row["safe"]:
        raise InvalidInput("this smol was flagged as unsafe and stays private")
    await repo.toggle_public(pool, smol_id, address)


async def make_first_song(pool, smol_id: str, song_id: str, address: str) -> None:
    if not await repo.swap_songs(pool, smol_id, song_id, address):
        raise NotFound("no such smol and second song of yours")


async def delete(pool, store, temporal, settings, smol_id: str, address: str) -> None:
    """Delete the smol with its likes, listings, media and workflow history."""
    await _check_owner(pool, temporal, smol_id, address)
    if await repo.get_smol(pool, smol_id) is None and is_running(await describe(temporal, smol_id)):
        raise Conflict("this smol is still being made; cancel it first")
    if await mints.is_claimed(pool, smol_id):
        raise Conflict("this smol is being minted; delete it when the mint has finished")
    for key in await repo.delete_smol(pool, smol_id):
        await store.delete(key)
    _views.pop(smol_id, None)
    await _forget_history(temporal, settings.temporal_namespace, smol_id)


async def _forget_history(temporal, namespace: str, smol_id: str) -> None:
    """Delete every run of the smol's workflow, so Temporal does not keep its prompt either. Best effort: the
    rows and media are gone already, and with Temporal down the history expires with its retention."""
    runs = [""]  # the latest run, even before visibility lists it
    try:
        runs += [w.run_id async for w in temporal.list_workflows(f"WorkflowId = '{smol_id}'")]
        for run_id in dict.fromkeys(runs):
            execution = WorkflowExecution(workflow_id=smol_id, run_id=run_id)
            request = DeleteWorkflowExecutionRequest(namespace=namespace, workflow_execution=execution)
            try:
                await temporal.workflow_service.delete_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
    except (RPCError, RuntimeError) as exc:
        if not temporal_down(exc) and not isinstance(exc, RPCError):
            raise
        log.warning("smol %s deleted, but its workflow history was not: %s", smol_id, exc)
