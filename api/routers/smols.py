"""Creating, listing and reading smols."""

from datetime import timedelta

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import OptionalUserDep, PoolDep, SettingsDep, TemporalDep, UserDep
from api.models import CreateSmol, SmolDetail, SmolList
from api.pagination import TIME_FORMAT, decode_cursor, page, parse_limit
from smol import repo
from smol.errors import NotFound, ServiceUnavailable
from smol.ids import new_smol_id
from smol.validation import check_playlist, check_prompt
from workflows.models import Payload, SmolInput
from workflows.smol import SmolWorkflow

router = APIRouter(tags=["smols"])
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


def _when(value) -> str:
    return value.strftime(TIME_FORMAT)


@router.get("/", response_model=SmolList, summary="Public smols, newest first (paged)")
async def list_smols(
    pool: PoolDep, response: Response, limit: str | None = Query(None), cursor: str | None = Query(None)
):
    size = parse_limit(limit)
    rows = await repo.list_public(pool, size + 1, decode_cursor(cursor))
    result = page(rows, size, lambda r: {
        "Id": r["id"], "Title": r["title"], "Song_1": r["song_1"], "Mint_Token": r["mint_token"],
        "Mint_Amm": r["mint_amm"], "Created_At": _when(r["created_at"]),
    })  # fmt: skip
    response.headers["Cache-Control"] = "public, max-age=30, stale-while-revalidate=60"
    return {"smols": result["items"], "pagination": result["pagination"]}


@router.post(
    "/",
    response_class=PlainTextResponse,
    summary="Start a new smol; answers its id",
    responses={
        200: {"content": {"text/plain": {}}, "description": "The new smol's id"},
        401: {"description": "No valid token"},
    },
)
async def create_smol(body: CreateSmol, user: UserDep, temporal: TemporalDep, settings: SettingsDep) -> str:
    check_prompt(body.prompt, body.instrumental)
    payload = Payload(
        address=user.address, prompt=body.prompt, public=body.public, instrumental=body.instrumental,
        playlist=check_playlist(body.playlist),
    )  # fmt: skip
    smol_id = new_smol_id()
    try:
        await temporal.start_workflow(
            SmolWorkflow.run,
            SmolInput(smol_id=smol_id, payload=payload),
            id=smol_id,
            task_queue=settings.task_queue,
            rpc_timeout=RPC_TIMEOUT,
        )
    except TEMPORAL_DOWN:
        raise ServiceUnavailable("the workflow service is unavailable; nothing was started, try again") from None
    return smol_id


def _finished_kv_do(steps: dict, songs: list) -> dict:
    kv: dict = {"image": "image" in steps}
    if "payload" in steps:
        kv["payload"] = steps["payload"]
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


async def _workflow_view(handle: WorkflowHandle, pool, smol_id: str) -> tuple[dict, dict]:
    """(kv_do, wf) of a smol without a row: from the workflow's query, else from the saved steps."""
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
    try:
        status = await handle.query(SmolWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        wf = {"status": closed_as if closed_as == "terminated" else status.status, "current_step": status.current_step,
              "steps": [vars(s) for s in status.steps]}  # fmt: skip
        if status.error:
            wf["error"] = status.error
        return status.kv_do, wf
    except (RPCError, WorkflowQueryFailedError):
        steps = await repo.load_steps(pool, smol_id)
        wf: dict = {"status": closed_as or "unknown"}
        if closed_as == "errored":
            wf["error"] = await _failure_of(handle)
        return _finished_kv_do(steps, await repo.songs_of(pool, smol_id)), wf


async def _failure_of(handle: WorkflowHandle) -> dict:
    try:
        await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = exc.cause
        return {
            "name": getattr(cause, "type", None) or type(cause).__name__,
            "message": getattr(cause, "message", str(cause)),
        }
    return {"name": "Unknown", "message": "the run ended without a result"}


@router.get(
    "/{id:smolid}",
    response_model=SmolDetail,
    response_model_exclude_unset=True,
    summary="One smol: its row when finished, its workflow state while in progress",
    responses=NOT_FOUND,
)
async def get_smol(id: str, pool: PoolDep, temporal: TemporalDep, user: OptionalUserDep, response: Response):
    address = user.address if user else None
    row = await repo.get_smol(pool, id)
    if row is not None:
        if not row["public"] and row["address"] != address:
            raise NotFound("smol not found")
        row = await repo.get_smol(pool, id, count_view=True)
        steps = await repo.load_steps(pool, id)
        d1 = {
            "Id": row["id"], "Title": row["title"], "Song_1": row["song_1"], "Song_2": row["song_2"],
            "Created_At": _when(row["created_at"]), "Public": int(row["public"]),
            "Instrumental": int(row["instrumental"]), "Plays": row["plays"], "Views": row["views"],
            "Address": row["address"], "Mint_Token": row["mint_token"], "Mint_Amm": row["mint_amm"],
        }  # fmt: skip
        kv_do = _finished_kv_do(steps, await repo.songs_of(pool, id))
        return {"kv_do": kv_do, "d1": d1, "liked": await repo.is_liked(pool, id, address)}

    kv_do, wf = await _workflow_view(temporal.get_workflow_handle(id), pool, id)
    payload = kv_do.get("payload") or {}
    if payload and not payload.get("public", True) and payload.get("address") != address:
        raise NotFound("smol not found")
    response.headers["Cache-Control"] = "no-store"
    return {"kv_do": kv_do, "wf": wf, "liked": await repo.is_liked(pool, id, address)}
