"""Creating, listing and reading smols: the routes; the rules are in api/services/smols.py."""

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse

from api.deps import (
    IDEMPOTENCY_ERRORS,
    IdempotentDep,
    OptionalUserDep,
    PoolDep,
    SettingsDep,
    StoreDep,
    TemporalDep,
    UserDep,
    changes_what_anyone_sees,
    pool_and_caller,
    same_for_everyone,
)
from api.models import (
    MAX_METADATA_VALUE,
    METADATA_KEY_PATTERN,
    CreatedList,
    CreateSmol,
    SmolDetail,
    SmolList,
)
from api.openapi import READS_CALLER
from api.pagination import decode_cursor, page, parse_limit
from api.services import smols, tallies
from api.views import NOT_FOUND, json_response, list_item, public_base
from contracts.smol import Payload
from smol import repo, search
from smol.errors import InvalidInput
from smol.validation import check_prompt, check_shown_playlist, storable
from smol.webhooks import check_destination

router = APIRouter(tags=["smols"])


async def _smol_page(fetch, limit: str | None, cursor: str | None) -> dict:
    size = parse_limit(limit)
    result = page(await fetch(size + 1, decode_cursor(cursor)), size, list_item)
    return {"smols": result["items"], "pagination": result["pagination"]}


LimitQuery = Query(None, description="page size, 1–100 (default 50)")
CursorQuery = Query(None, description="nextCursor of the previous page")
AUTH_ERRORS = {401: {"description": "No valid token", "content": {"text/plain": {}}}}


@router.get("/", response_model=SmolList, summary="Public smols, newest first (paged); one creator's with ?address=",
            openapi_extra=READS_CALLER)
async def list_smols(
    request: Request, limit: str | None = LimitQuery, cursor: str | None = CursorQuery,
    address: Annotated[str | None, Query(max_length=100, description="only this creator's smols")] = None,
) -> Response:  # fmt: skip
    # (the most asked route: the pool and the caller asked for here, not as dependencies, and the answer written
    # as is, not validated against its model again: 8-17 % less API CPU a request made afresh; README Performance)
    pool, user = await pool_and_caller(request)
    if address is None:
        same_for_everyone(request)
        answer = await _smol_page(lambda n, after: repo.list_public(pool, n, after), limit, cursor)
        return json_response(answer, {"Cache-Control": "public, max-age=30, stale-while-revalidate=60"})
    viewer = user.address if user else None  # the creator also sees their private smols
    answer = await _smol_page(lambda n, after: search.list_by_creator(pool, address, n, after, viewer), limit, cursor)
    cache = "private, no-store" if viewer == address else "public, max-age=30"
    return json_response(answer, {"Cache-Control": cache, "Vary": "Authorization, Cookie"})


@router.get("/created", response_model=CreatedList, summary="The caller's smols, private ones included (paged)",
            responses=AUTH_ERRORS)  # fmt: skip
async def list_created(
    pool: PoolDep, user: UserDep, temporal: TemporalDep, request: Request, limit: str | None = LimitQuery,
    cursor: str | None = CursorQuery,
    status: Literal["running", "failed", "complete"] | None = Query(
        None, description="running (queued and paused too), failed, or complete; without it, finished smols"),
):  # fmt: skip
    metadata = _metadata_filter(request)
    size = parse_limit(limit)
    rows = await smols.list_created(pool, temporal, user.address, status, metadata, size + 1, decode_cursor(cursor))
    result = page(rows, size, lambda row: {**list_item(row), "Status": row["status"], "Metadata": row["metadata"]})
    return {"smols": result["items"], "pagination": result["pagination"]}


def _metadata_filter(request: Request) -> dict[str, str]:
    """`metadata[key]=value` query parameters (OpenAPI's deepObject style)."""
    wanted = {}
    for name, value in request.query_params.multi_items():
        if name == "metadata":
            raise InvalidInput("metadata filters are metadata[key]=value")
        if name.startswith("metadata[") and name.endswith("]"):
            key = name[len("metadata[") : -1]
            if not re.match(METADATA_KEY_PATTERN, key) or len(value) > MAX_METADATA_VALUE or not storable(value):
                raise InvalidInput("metadata filters are metadata[key]=value, keys of letters, digits and _.- "
                                   f"(at most 40), values of at most {MAX_METADATA_VALUE} characters")  # fmt: skip
            wanted[key] = value
    return wanted


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
        **IDEMPOTENCY_ERRORS,
    },
)
async def create_smol(
    body: CreateSmol, user: UserDep, temporal: TemporalDep, settings: SettingsDep, pool: PoolDep,
    idempotent: IdempotentDep,
) -> Response:
    return await idempotent.run(lambda: _create(body, user, temporal, settings, pool))


async def _create(body: CreateSmol, user, temporal, settings, pool) -> Response:
    check_prompt(body.prompt, body.instrumental)
    if body.song_model is not None and body.song_model not in settings.chain("song"):
        message = f"song_model must be one of: {', '.join(settings.chain('song'))}"
        raise RequestValidationError([{"loc": ("body", "song_model"), "msg": message, "type": "value_error",
                                       "input": body.song_model}])  # fmt: skip
    playlist = check_shown_playlist(body.playlist)
    await smols.take_run_slot(pool, settings, user.address)  # (before the webhook host's lookup, which costs too)
    webhook = body.webhook_url and await check_destination(body.webhook_url, settings.webhooks_allow_private,
                                                           caller=user.address)  # fmt: skip
    payload = Payload(
        address=user.address, prompt=body.prompt, public=body.public, instrumental=body.instrumental,
        playlist=playlist, webhook_url=webhook or None,
        song_model=body.song_model,
        song_params=body.song_params.model_dump(exclude_none=True) if body.song_params else None,
        title=body.title, metadata=body.metadata,
    )  # fmt: skip
    async with smols.slot_given_back_unless_started(pool, user.address):
        return PlainTextResponse(await smols.create(temporal, settings, payload))


@router.get(
    "/{id:smolid}",
    response_model=SmolDetail,
    response_model_exclude_unset=True,
    summary="One smol: its row when finished, its workflow state while in progress",
    responses=NOT_FOUND,
)
async def get_smol(id: str, pool: PoolDep, temporal: TemporalDep, user: OptionalUserDep, request: Request,
                   response: Response, settings: SettingsDep):  # fmt: skip
    viewer = user.address if user else None
    listener = tallies.listener(request, viewer)
    counts = tallies.claim(listener, id, settings.count_once_seconds)
    body = None
    try:
        body = await smols.detail(pool, temporal, id, viewer, public_base(request, settings), count_view=counts)
    finally:
        if counts and (body is None or "d1" not in body):  # no view counted: not found, or still being made
            tallies.release(listener, id)
    if "wf" in body:
        response.headers["Cache-Control"] = "no-store"
    return body


OWNER_ERRORS = {
    **AUTH_ERRORS,
    404: {"description": "No such smol of the caller's", "content": {"text/plain": {}}},
}
BUSY_ERRORS = {**OWNER_ERRORS, 409: {"description": "Finished, or still being made (or, with an Idempotency-Key, the "
                                    "first request with it still being answered)", "content": {"text/plain": {}}}}


@router.post(
    "/retry/{id:smolid}",
    response_class=PlainTextResponse,
    summary="Run a failed smol again under the same id, reusing every finished step",
    responses=BUSY_ERRORS,
)
async def retry_smol(id: str, user: UserDep, pool: PoolDep, temporal: TemporalDep, settings: SettingsDep,
                     idempotent: IdempotentDep) -> Response:  # fmt: skip
    async def answer() -> Response:
        return PlainTextResponse(await smols.retry(pool, temporal, settings, id, user.address))

    return await idempotent.run(answer)


CONTROL_ERRORS = {**OWNER_ERRORS, 409: {"description": "Not being made (finished, failed or cancelled)",
                                        "content": {"text/plain": {}}}}


@router.post("/{id:smolid}/{action:control}", status_code=204, responses=CONTROL_ERRORS,
             summary="While the caller's smol is being made: pause it (at the next step), resume it, or cancel it")
async def control_smol(id: str, action: Literal["pause", "resume", "cancel"], user: UserDep, pool: PoolDep,
                       temporal: TemporalDep) -> Response:  # fmt: skip
    await smols.control(pool, temporal, id, user.address, action)
    return Response(status_code=204)


@router.put("/{id:smolid}", status_code=204, summary="Make the caller's smol public or private (a toggle)",
            responses={**OWNER_ERRORS, 400: {"description": "Flagged as unsafe: it stays private"}},
            dependencies=[Depends(changes_what_anyone_sees)])  # fmt: skip
async def toggle_visibility(id: str, user: UserDep, pool: PoolDep) -> Response:
    await smols.toggle_visibility(pool, id, user.address)
    return Response(status_code=204)


@router.put("/{smol_id:smolid}/{song_id:musicid}", status_code=204, summary="Make a smol's second song its first",
            responses=OWNER_ERRORS, dependencies=[Depends(changes_what_anyone_sees)])  # fmt: skip
async def make_first_song(smol_id: str, song_id: str, user: UserDep, pool: PoolDep) -> Response:
    await smols.make_first_song(pool, smol_id, song_id, user.address)
    return Response(status_code=204)


@router.delete("/{id:smolid}", status_code=204, summary="Delete the caller's smol with its likes, listings and media",
               responses=BUSY_ERRORS, dependencies=[Depends(changes_what_anyone_sees)])  # fmt: skip
async def delete_smol(id: str, user: UserDep, pool: PoolDep, store: StoreDep, temporal: TemporalDep,
                      settings: SettingsDep) -> Response:  # fmt: skip
    await smols.delete(pool, store, temporal, settings, id, user.address)
    return Response(status_code=204)
