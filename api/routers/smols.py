"""Creating, listing and reading smols."""

import asyncio
import logging
import time
from dataclasses import asdict
from datetime import timedelta

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import OptionalUserDep, PoolDep, SettingsDep, StoreDep, TemporalDep, UserDep
from api.metrics import RATE_LIMITED, SMOLS_STARTED, WORKFLOW_VIEWS
from api.models import CreateSmol, SmolDetail, SmolList
from api.pagination import decode_cursor, page, parse_limit
from api.views import list_item, when
from contracts.smol import Payload, SmolInput, payload_view
from smol import mints, repo
from smol.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable, TooManyRequests
from smol.ids import new_smol_id
from smol.validation import check_playlist, check_prompt
from smol.webhooks import check_destination
from workflows.smol import SmolWorkflow
from workflows.summary import start_summary

router = APIRouter(tags=["smols"])
log = logging.getLogger("smol.api")
QUERY_TIMEOUT = timedelta(seconds=5)
RPC_TIMEOUT = timedelta(seconds=10)
# A lazy client reports a server it cannot connect to as RuntimeError("Failed client connect: ...").
TEMPORAL_DOWN = (RPCError, RuntimeError)
CLOSED_STATUS = {
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED: "complete",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED: "errored",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: "errored",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED: "terminated",
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated",
}
NOT_FOUND = {404: {"description": "No such smol, or a private smol of someone else", "content": {"text/plain": {}}}}


async def _smol_page(fetch, limit: str | None, cursor: str | None) -> dict:
    size = parse_limit(limit)
    result = page(await fetch(size + 1, decode_cursor(cursor)), size, list_item)
    return {"smols": result["items"], "pagination": result["pagination"]}


LimitQuery = Query(None, description="page size, 1–100 (default 50)")
CursorQuery = Query(None, description="nextCursor of the previous page")
AUTH_ERRORS = {401: {"description": "No valid token", "content": {"text/plain": {}}}}


@router.get("/", response_model=SmolList, summary="Public smols, newest first (paged)")
async def list_smols(
    pool: PoolDep, response: Response, limit: str | None = LimitQuery, cursor: str | None = CursorQuery
):
    response.headers["Cache-Control"] = "public, max-age=30, stale-while-revalidate=60"
    return await _smol_page(lambda n, after: repo.list_public(pool, n, after), limit, cursor)


@router.get("/created", response_model=SmolList, summary="The caller's smols, private ones included (paged)",
            responses=AUTH_ERRORS)  # fmt: skip
async def list_created(pool: PoolDep, user: UserDep, limit: str | None = LimitQuery, cursor: str | None = CursorQuery):
    return await _smol_page(lambda n, after: repo.list_created(pool, user.address, n, after), limit, cursor)


@router.get("/liked", response_model=SmolList, summary="Smols the caller liked (paged)", responses=AUTH_ERRORS)
async def list_liked(pool: PoolDep, user: UserDep, limit: str | None = LimitQuery, cursor: str | None = CursorQuery):
    return await _smol_page(lambda n, after: repo.list_liked(pool, user.address, n, after), limit, cursor)


@router.post(
    "/",
    response_class=PlainTextResponse,
    summary="Start a new smol; answers its id",
    responses={
        200: {"content": {"text/plain": {}}, "description": "The new smol's id"},
        401: {"description": "No valid token"},
        429: {"description": "Too many new smols from this address; see Retry-After"},
    },
)
async def create_smol(
    body: CreateSmol, user: UserDep, temporal: TemporalDep, settings: SettingsDep, pool: PoolDep
) -> str:
    check_prompt(body.prompt, body.instrumental)
    if body.song_model is not None and body.song_model not in settings.chain("song"):
        message = f"song_model must be one of: {', '.join(settings.chain('song'))}"
        raise RequestValidationError([{"loc": ("body", "song_model"), "msg": message, "type": "value_error",
                                       "input": body.song_model}])  # fmt: skip
    webhook = body.webhook_url and await check_destination(body.webhook_url, settings.webhooks_allow_private)
    payload = Payload(
        address=user.address, prompt=body.prompt, public=body.public, instrumental=body.instrumental,
        playlist=check_playlist(body.playlist),
        webhook_url=webhook or None,
        song_model=body.song_model,
        song_params=body.song_params.model_dump(exclude_none=True) if body.song_params else None,
    )  # fmt: skip
    await _take_run_slot(pool, settings, user.address)
    smol_id = new_smol_id()
    try:
        await temporal.start_workflow(
            SmolWorkflow.run,
            SmolInput(smol_id=smol_id, payload=payload),
            id=smol_id,
            task_queue=settings.task_queue,
            rpc_timeout=RPC_TIMEOUT,
            static_summary=start_summary(payload),
        )
    except TEMPORAL_DOWN:
        raise ServiceUnavailable("the workflow service is unavailable; nothing was started, try again") from None
    SMOLS_STARTED.inc()
    return smol_id


async def _take_run_slot(pool, settings, address: str) -> None:
    """Count one new run (a new smol or a retry) for the address, or 429 past SMOL_CREATES_PER_MINUTE."""
    wait = await repo.take_create_slot(pool, address, settings.creates_per_minute, 60)
    if wait is not None:
        RATE_LIMITED.inc()
        raise TooManyRequests(f"at most {settings.creates_per_minute} new runs a minute; try again shortly", wait)


def _finished_kv_do(steps: dict, songs: list) -> dict:
    kv: dict = {"image": "image" in steps}
    if "payload" in steps:
        kv["payload"] = payload_view(steps["payload"])
    if "description" in steps:
        kv["description"] = steps["description"]["text"]
    for name in ("lyrics", "nsfw"):
        if name in steps:
            kv[name] = steps[name]["value"]
    if "song_ids" in steps:
        kv["song_ids"] = steps["song_ids"]["ids"]
        by_id = {s["music_id"]: s for s in songs}
        kv["songs"] = [
            {"music_id": m, "status": by_id[m]["status"], "audio": f"/song/{m}.mp3" if by_id[m]["object_key"] else None}
            for m in kv["song_ids"]
            if m in by_id
        ]
    return kv


def public_base(request: Request, settings) -> str:
    """Where clients reach this API: SMOL_PUBLIC_URL, else the request's own base URL."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _with_absolute_audio(kv_do: dict, base: str) -> dict:
    """`kv_do` with each song's `audio` playable from any origin: our archived `/song/<id>.mp3` made absolute, the
    provider's partial audio (absolute already) kept. A copy: the workflow view is shared between viewers."""
    if not kv_do.get("songs"):
        return kv_do
    songs = [{**song, "audio": base + song["audio"]} if (song.get("audio") or "").startswith("/song/") else song
             for song in kv_do["songs"]]  # fmt: skip
    return {**kv_do, "songs": songs}


VIEW_SECONDS = 0.4
_views: dict[str, tuple[float, asyncio.Future]] = {}


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
    handle = temporal.get_workflow_handle(smol_id)
    try:
        description = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except TEMPORAL_DOWN as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound("smol not found") from None
        steps = await repo.load_steps(pool, smol_id)
        if not steps:
            raise ServiceUnavailable("the workflow service is unavailable") from None
        return _finished_kv_do(steps, await repo.songs_of(pool, smol_id)), {"status": "unknown"}
    closed_as = CLOSED_STATUS.get(description.status)
    steps = await repo.load_steps(pool, smol_id)
    if closed_as == "complete" or (
        closed_as and not steps and (closed_as == "terminated" or await repo.was_deleted(pool, smol_id))
    ):
        raise NotFound("smol not found")  # finished without a row, or ended with no data: deleted or discarded
    try:
        status = await handle.query(SmolWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        kv_do = status.kv_do
        wf = {"status": closed_as if closed_as == "terminated" else status.status, "current_step": status.current_step,
              "steps": [vars(s) for s in status.steps]}  # fmt: skip
        if status.error:
            wf["error"] = status.error
    except (RPCError, WorkflowQueryFailedError):
        kv_do = _finished_kv_do(steps, await repo.songs_of(pool, smol_id))
        if "payload" not in kv_do and (payload := await _started_payload(temporal, smol_id)) is not None:
            kv_do["payload"] = payload_view(asdict(payload))
        wf = {"status": closed_as or "unknown"}
        if closed_as == "errored":
            wf["error"] = await _failure_of(temporal.get_workflow_handle(smol_id, run_id=description.run_id))
    if "nsfw" not in kv_do and "nsfw" in steps:  # a retry run before it loaded the saved verdict
        kv_do["nsfw"] = steps["nsfw"]["value"]
    return kv_do, wf


async def _started_payload(temporal, smol_id: str) -> Payload | None:
    """The payload the smol's latest run was started with (the input in the first event of its history), decoded by
    the client's data converter (and so its codec); None if Temporal knows no such run."""
    try:
        events = temporal.get_workflow_handle(smol_id).fetch_history_events(page_size=1, rpc_timeout=RPC_TIMEOUT)
        async for event in events:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await temporal.data_converter.decode(payloads, [SmolInput])
            return started.payload
    except TEMPORAL_DOWN as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable("the workflow service is unavailable") from None
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


@router.get(
    "/{id:smolid}",
    response_model=SmolDetail,
    response_model_exclude_unset=True,
    summary="One smol: its row when finished, its workflow state while in progress",
    responses=NOT_FOUND,
)
async def get_smol(id: str, pool: PoolDep, temporal: TemporalDep, user: OptionalUserDep, request: Request,
                   response: Response, settings: SettingsDep):  # fmt: skip
    body = await smol_detail(pool, temporal, id, user.address if user else None, public_base(request, settings),
                             count_view=True)  # fmt: skip
    if "wf" in body:
        response.headers["Cache-Control"] = "no-store"
    return body


async def smol_detail(pool, temporal, smol_id: str, viewer: str | None, base: str, count_view: bool = False) -> dict:
    """The GET /{id} body: the finished row's shape, or the workflow's while in progress; only the progress when the
    viewer may not see its content (repo.visible_in_progress). NotFound if the viewer may not see it at all."""
    row = await (repo.view_smol if count_view else repo.visible_smol)(pool, smol_id, viewer)
    if row is not None:
        steps, songs, liked, mint = await asyncio.gather(
            repo.load_steps(pool, smol_id), repo.songs_of(pool, smol_id), repo.is_liked(pool, smol_id, viewer),
            mints.latest_for(pool, smol_id),
        )  # fmt: skip
        d1 = {
            "Id": row["id"], "Title": row["title"], "Song_1": row["song_1"], "Song_2": row["song_2"],
            "Created_At": when(row["created_at"]), "Public": int(row["public"]),
            "Instrumental": int(row["instrumental"]), "Plays": row["plays"], "Views": row["views"],
            "Address": row["address"], "Mint_Token": row["mint_token"], "Mint_Amm": row["mint_amm"],
        }  # fmt: skip
        body = {"kv_do": _with_absolute_audio(_finished_kv_do(steps, songs), base), "d1": d1, "liked": liked}
        if mint is not None:
            body["mint"] = {"id": mint["id"], "status": mint["status"], "tx_hash": mint["tx_hash"],
                            "error": mint["error"]}  # fmt: skip
        if row["address"] == viewer:
            body["paid_calls"] = await repo.paid_calls(pool, smol_id)
        return body
    if await repo.get_smol(pool, smol_id) is not None:
        raise NotFound("smol not found")  # finished, and not for this viewer

    kv_do, wf = await _shared_workflow_view(temporal, pool, smol_id)
    if not repo.visible_in_progress(kv_do, viewer):
        return {"kv_do": {"image": kv_do["image"]}, "wf": {"status": wf["status"]}, "liked": False}
    body = {"kv_do": _with_absolute_audio(kv_do, base), "wf": wf, "liked": await repo.is_liked(pool, smol_id, viewer)}
    if viewer is not None and (kv_do.get("payload") or {}).get("address") == viewer:
        body["paid_calls"] = await repo.paid_calls(pool, smol_id)
    return body


OWNER_ERRORS = {
    **AUTH_ERRORS,
    404: {"description": "No such smol of the caller's", "content": {"text/plain": {}}},
}
BUSY_ERRORS = {**OWNER_ERRORS, 409: {"description": "Finished, or still being made", "content": {"text/plain": {}}}}


async def _describe(temporal, smol_id: str):
    """The smol's latest run as Temporal describes it; None if there is none."""
    try:
        return await temporal.get_workflow_handle(smol_id).describe(rpc_timeout=RPC_TIMEOUT)
    except TEMPORAL_DOWN as exc:
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable("the workflow service is unavailable") from None


async def _running(temporal, smol_id: str) -> bool:
    """Whether a run of this smol is still going (so it must not be retried or deleted underneath)."""
    description = await _describe(temporal, smol_id)
    return description is not None and description.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING


async def _owned(pool, temporal, smol_id: str, user) -> None:
    """NotFound unless the caller made this smol: by its row or saved payload, else (a run that has not saved its
    payload yet, or failed before it could) by the payload its run was started with."""
    owner = await repo.smol_owner(pool, smol_id)
    if owner is None and not await repo.was_deleted(pool, smol_id):
        payload = await _started_payload(temporal, smol_id)
        owner = payload.address if payload else None
    if owner != user.address:
        raise NotFound("smol not found")


@router.post(
    "/retry/{id:smolid}",
    response_class=PlainTextResponse,
    summary="Run a failed smol again under the same id, reusing every finished step",
    responses=BUSY_ERRORS,
)
async def retry_smol(id: str, user: UserDep, pool: PoolDep, temporal: TemporalDep, settings: SettingsDep) -> str:
    await _owned(pool, temporal, id, user)
    if await repo.get_smol(pool, id) is not None:
        raise Conflict("this smol is finished; there is nothing to retry")
    description = await _describe(temporal, id)
    if description is not None and description.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        raise Conflict("this smol is still being made")
    steps = await repo.load_steps(pool, id)
    if "payload" in steps:
        payload = Payload(**steps["payload"])
    elif description is not None and CLOSED_STATUS.get(description.status) == "errored":
        payload = await _started_payload(temporal, id)  # it failed before saving anything: its input has it all
    else:
        payload = None  # a run that ended without data (cancelled, or deleted): nothing to retry
    if payload is None:
        raise NotFound("smol not found")
    title = ((steps.get("lyrics") or {}).get("value") or {}).get("title")
    await _take_run_slot(pool, settings, user.address)  # a retry run may pay for its steps again: same limit
    try:
        await temporal.start_workflow(
            SmolWorkflow.run,
            SmolInput(smol_id=id, payload=payload, resume=True),
            id=id,
            task_queue=settings.task_queue,
            rpc_timeout=RPC_TIMEOUT,
            static_summary=start_summary(payload, title),
        )
    except WorkflowAlreadyStartedError:
        raise Conflict("this smol is still being made") from None
    except TEMPORAL_DOWN:
        raise ServiceUnavailable("the workflow service is unavailable; nothing was started, try again") from None
    _views.pop(id, None)  # the next look sees the new run
    return id


@router.put("/{id:smolid}", status_code=204, summary="Make the caller's smol public or private (a toggle)",
            responses={**OWNER_ERRORS, 400: {"description": "Flagged as unsafe: it stays private"}})  # fmt: skip
async def toggle_visibility(id: str, user: UserDep, pool: PoolDep) -> Response:
    row = await repo.get_smol(pool, id)
    if row is None or row["address"] != user.address:
        raise NotFound("smol not found")
    if not row["safe"]:
        raise InvalidInput("this smol was flagged as unsafe and stays private")
    await repo.toggle_public(pool, id, user.address)
    return Response(status_code=204)


@router.put("/{smol_id:smolid}/{song_id:musicid}", status_code=204, summary="Make a smol's second song its first",
            responses=OWNER_ERRORS)  # fmt: skip
async def make_first_song(smol_id: str, song_id: str, user: UserDep, pool: PoolDep) -> Response:
    if not await repo.swap_songs(pool, smol_id, song_id, user.address):
        raise NotFound("no such smol and second song of yours")
    return Response(status_code=204)


@router.delete("/{id:smolid}", status_code=204, summary="Delete the caller's smol with its likes, listings and media",
               responses=BUSY_ERRORS)  # fmt: skip
async def delete_smol(id: str, user: UserDep, pool: PoolDep, store: StoreDep, temporal: TemporalDep,
                      settings: SettingsDep) -> Response:  # fmt: skip
    await _owned(pool, temporal, id, user)
    if await repo.get_smol(pool, id) is None and await _running(temporal, id):
        raise Conflict("this smol is still being made; cancel it first")
    if await mints.is_claimed(pool, id):
        raise Conflict("this smol is being minted; delete it when the mint has finished")
    for key in await repo.delete_smol(pool, id):
        await store.delete(key)
    _views.pop(id, None)
    await _forget_history(temporal, settings.temporal_namespace, id)
    return Response(status_code=204)


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
    except TEMPORAL_DOWN as exc:
        log.warning("smol %s deleted, but its workflow history was not: %s", smol_id, exc)
