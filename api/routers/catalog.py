"""The SoundFlow catalog: catalogs by tier and category (ETag), free audio, signed URLs of premium tracks, and
premium tracks on demand for operators."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import SettingsDep, StoreDep, TemporalDep, UserDep, _token, session_claims
from api.services import catalog as service
from contracts.catalog import PREMIUM_MODELS, premium_input
from smol.errors import Forbidden, InvalidInput, NotFound, Unauthorized

router = APIRouter(tags=["catalog"])
JSON_LIST = {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}
TEXT = {"content": {"text/plain": {}}}


def _base(request: Request, settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


async def _catalog(request: Request, store, settings, name: str) -> Response:
    body, etag = await service.served_catalog(store, service.catalog_key(name), _base(request, settings))
    headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
    wanted = request.headers.get("if-none-match")
    if wanted and etag in {tag.strip().removeprefix("W/") for tag in wanted.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


CATALOG_RESPONSES = {200: {"description": "Catalog entries", **JSON_LIST}, 304: {"description": "Not modified"}}


@router.get("/catalog/all", summary="Every track, free and premium", responses=CATALOG_RESPONSES,
            response_class=Response)  # fmt: skip
async def catalog_all(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    return await _catalog(request, store, settings, "all")


@router.get("/catalog/free", summary="Free tracks, with public URLs", responses=CATALOG_RESPONSES,
            response_class=Response)  # fmt: skip
async def catalog_free(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    return await _catalog(request, store, settings, "free")


@router.get("/catalog/premium", summary="Premium tracks (metadata only)", responses=CATALOG_RESPONSES,
            response_class=Response)  # fmt: skip
async def catalog_premium(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    return await _catalog(request, store, settings, "premium")


@router.get("/catalog/by-category/{slug}", summary="One category's tracks",
            responses={**CATALOG_RESPONSES, 404: {"description": "Unknown category", **TEXT}},
            response_class=Response)  # fmt: skip
async def catalog_by_category(slug: str, request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    if slug in service.CATALOGS:  # only the five category slugs here
        raise NotFound(f"no category {slug!r}")
    return await _catalog(request, store, settings, slug)


AUDIO = {200: {"content": {"audio/mpeg": {}}, "description": "The track"}}


@router.get("/catalog/audio/free/{date}/{name}", summary="A free track's audio (its catalog url)",
            responses={**AUDIO, 404: {"description": "No such track", **TEXT}}, response_class=Response)  # fmt: skip
async def free_audio(date: str, name: str, store: StoreDep) -> Response:
    key = f"audio/free/{date}/{name}"
    if not service.FREE_AUDIO.match(key):
        raise NotFound("no such track")
    body = await store.get(key)
    return Response(body, media_type="audio/mpeg",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})  # fmt: skip


async def _premium_caller(request: Request) -> None:
    """401 without a valid token; 403 for a token without the premium claim."""
    token = _token(request)
    if not token:
        raise Unauthorized("a premium token is required")
    if (await session_claims(request, token)).get("premium") is not True:
        raise Forbidden("this token does not carry the premium claim")


class SignedUrl(BaseModel):
    signedUrl: str
    expiresAt: str = Field(description="ISO 8601, UTC")


@router.get("/tracks/premium/{id}/signed", summary="A signed URL of a premium track, valid one hour",
            response_model=SignedUrl,
            responses={401: {"description": "No valid token", **TEXT},
                       403: {"description": "The token has no premium claim", **TEXT},
                       404: {"description": "No such premium track", **TEXT}},
            openapi_extra={"security": [{"bearer": []}, {"cookie": []}]})  # (a premium session token)  # fmt: skip
async def premium_signed(id: str, request: Request, store: StoreDep, settings: SettingsDep,
                         _: Annotated[None, Depends(_premium_caller)]) -> dict:  # fmt: skip
    return await service.signed_url(store, settings, id, _base(request, settings))


@router.get("/tracks/premium/{id}/audio", summary="A premium track's audio through a signed URL",
            responses={**AUDIO, 403: {"description": "Expired or altered signature", **TEXT},
                       404: {"description": "No such premium track", **TEXT}}, response_class=Response)  # fmt: skip
async def premium_audio(id: str, store: StoreDep, settings: SettingsDep, exp: str | None = Query(None),
                        sig: str | None = Query(None)) -> Response:  # fmt: skip
    service.check_signature(settings, id, exp, sig)
    body = await store.get(await service.premium_object(store, id))
    return Response(body, media_type="audio/mpeg", headers={"Cache-Control": "private, max-age=3600"})


class PremiumRequest(BaseModel):
    category: str = Field(max_length=100, description="Deep Work | Study | Relax | Nature | Flow State, or a slug")
    track_id: str = Field(max_length=64, description="e.g. custom_focus_1")
    duration: int = Field(180, description="seconds, 5–600")
    model: str = Field(PREMIUM_MODELS[0], description=" | ".join(PREMIUM_MODELS))


@router.post("/catalog/premium", summary="Make a premium track (operators)", status_code=202,
             responses={202: {"description": "Started: the workflow id"},
                        403: {"description": "Not an operator", **TEXT}})  # fmt: skip
async def make_premium(body: PremiumRequest, user: UserDep, settings: SettingsDep, temporal: TemporalDep):
    if user.address not in settings.admin_addresses:
        raise Forbidden("operators only")
    try:
        data = premium_input(body.category, body.track_id, body.duration, body.model,
                             dt.datetime.now(dt.UTC).date().isoformat())  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    workflow_id = await service.start_premium(temporal, settings, data)
    return JSONResponse({"workflowId": workflow_id, "id": f"premium-{data.date}-{data.track_id}"}, status_code=202)
