"""Likes, playlists and mixtapes."""

import secrets
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from api.deps import IDEMPOTENCY_ERRORS, IdempotentDep, OptionalUserDep, PoolDep, SettingsDep, UserDep
from api.models import Pagination
from api.pagination import decode_cursor, page, parse_limit
from api.views import when
from smol import repo, social
from smol.errors import InvalidInput, NotFound, TooManyRequests
from smol.ids import SMOL_ID_PATTERN
from smol.validation import check_shown_text

router = APIRouter()
TEXT = {"content": {"text/plain": {}}}
AUTH_ERRORS = {401: {"description": "No valid token", **TEXT}}
SmolId = Annotated[str, Field(pattern=SMOL_ID_PATTERN)]


@router.get("/likes", response_model=list[str], tags=["likes"], summary="Ids of the smols the caller liked",
            responses=AUTH_ERRORS)  # fmt: skip
async def my_likes(user: UserDep, pool: PoolDep) -> list[str]:
    return await social.liked_ids(pool, user.address)


@router.put("/likes/{id:smolid}", status_code=204, tags=["likes"], summary="Like or unlike a smol (a toggle)",
            responses={**AUTH_ERRORS, 404: {"description": "No such smol", **TEXT}})  # fmt: skip
async def toggle_like(id: str, user: UserDep, pool: PoolDep) -> Response:
    if await repo.visible_smol(pool, id, user.address) is None and not await repo.is_liked(pool, id, user.address):
        raise NotFound("smol not found")  # (a like of a smol that went private or was flagged can still be undone)
    await social.toggle_like(pool, id, user.address)
    return Response(status_code=204)


class PlaylistSmol(BaseModel):
    Id: str
    Title: str
    Song_1: str
    Address: str
    Plays: int
    Views: int
    Mint_Token: str | None
    Mint_Amm: str | None
    Created_At: str


class PlaylistUser(BaseModel):
    Username: str
    Address: str


class Playlist(BaseModel):
    smols: list[PlaylistSmol]
    users: list[PlaylistUser]
    pagination: Pagination


@router.get(
    "/playlist/{title}", response_model=Playlist, tags=["playlists"], summary="Public smols in a playlist (paged)"
)
async def playlist(
    title: Annotated[str, Path(max_length=100)],
    pool: PoolDep,
    limit: str | None = Query(None),
    cursor: str | None = Query(None),
):
    size = parse_limit(limit)
    rows = await repo.list_playlist(pool, title, size + 1, decode_cursor(cursor))
    result = page(rows, size, lambda r: {
        "Id": r["id"], "Title": r["title"], "Song_1": r["song_1"], "Address": r["address"], "Plays": r["plays"],
        "Views": r["views"], "Mint_Token": r["mint_token"], "Mint_Amm": r["mint_amm"],
        "Created_At": when(r["created_at"]),
    })  # fmt: skip
    addresses = sorted({item["Address"] for item in result["items"]})
    users = [{"Username": u["username"], "Address": u["address"]} for u in await social.users_for(pool, addresses)]
    return {"smols": result["items"], "users": users, "pagination": result["pagination"]}


class MixtapeBody(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_shown_text)]
    desc: Annotated[str, Field(max_length=2000), AfterValidator(partial(check_shown_text, lines=True))] = ""
    smols: list[SmolId] = Field(min_length=1, max_length=200)


class MixtapeCreated(BaseModel):
    id: str


class MixtapeSummary(BaseModel):
    Id: str
    Title: str
    Desc: str
    Smols: list[str]
    Address: str
    Created_At: str


class MixtapeTrack(BaseModel):
    Id: str
    Title: str
    Address: str
    Mint_Token: str | None
    Mint_Amm: str | None
    Song_1: str
    Tags: list[str]


class Mixtape(BaseModel):
    Id: str
    Title: str
    Desc: str
    Address: str
    Created_At: str
    Smols: list[MixtapeTrack]


def _summary(row) -> dict:
    return {
        "Id": row["id"], "Title": row["title"], "Desc": row["desc"], "Smols": list(row["smols"]),
        "Address": row["address"], "Created_At": when(row["created_at"]),
    }  # fmt: skip


async def _checked_smols(pool, body: MixtapeBody, address: str) -> list[str]:
    smols = list(dict.fromkeys(body.smols))
    existing = await social.existing_smols(pool, smols, address)  # (once: not per smol)
    missing = [s for s in smols if s not in existing]
    if missing:
        raise InvalidInput(f"unknown smols: {', '.join(missing[:5])}")
    return smols


MIXTAPE_ERRORS = {**AUTH_ERRORS, 400: {"description": "Unknown smols in the list", **TEXT}}
NEW_MIXTAPE_ERRORS = {**MIXTAPE_ERRORS, **IDEMPOTENCY_ERRORS,
                      429: {"description": "Past SMOL_MIXTAPES_PER_HOUR; see Retry-After", **TEXT}}
OWNED_MIXTAPE = {**MIXTAPE_ERRORS, 404: {"description": "No such mixtape of the caller's", **TEXT}}


@router.post("/mixtapes", status_code=201, response_model=MixtapeCreated, tags=["mixtapes"],
             summary="Make a mixtape of smols", responses=NEW_MIXTAPE_ERRORS)  # fmt: skip
async def create_mixtape(body: MixtapeBody, user: UserDep, pool: PoolDep, settings: SettingsDep,
                         idempotent: IdempotentDep):  # fmt: skip
    async def answer() -> JSONResponse:
        smols = await _checked_smols(pool, body, user.address)
        limit = settings.mixtapes_per_hour
        if (wait := await repo.take_create_slot(pool, f"mixtape:{user.address}", limit, 3600)) is not None:
            raise TooManyRequests(f"at most {limit} new mixtapes an hour; try again later", wait)
        mixtape_id = secrets.token_hex(8)
        await social.create_mixtape(pool, mixtape_id, body.title, body.desc, smols, user.address)
        return JSONResponse({"id": mixtape_id}, status_code=201)

    return await idempotent.run(answer)


@router.get("/mixtapes", response_model=list[MixtapeSummary], tags=["mixtapes"], summary="Newest mixtapes (100)")
async def list_mixtapes(pool: PoolDep, user: OptionalUserDep):
    return [_summary(row) for row in await social.list_mixtapes(pool, user.address if user else None)]


@router.get("/mixtapes/{id:mixtapeid}", response_model=Mixtape, tags=["mixtapes"], summary="A mixtape with its smols",
            responses={404: {"description": "No such mixtape", **TEXT}})  # fmt: skip
async def get_mixtape(id: str, pool: PoolDep, user: OptionalUserDep):
    row = await social.get_mixtape(pool, id)
    if row is None:
        raise NotFound("mixtape not found")
    tracks = await social.mixtape_tracks(pool, list(row["smols"]), user.address if user else None)
    summary = _summary(row)
    summary["Smols"] = [
        {"Id": t["id"], "Title": t["title"], "Address": t["address"], "Mint_Token": t["mint_token"],
         "Mint_Amm": t["mint_amm"], "Song_1": t["song_1"], "Tags": list(t["tags"])}
        for t in tracks
    ]  # fmt: skip
    return summary


@router.put("/mixtapes/{id:mixtapeid}", status_code=204, tags=["mixtapes"], summary="Replace the caller's mixtape",
            responses=OWNED_MIXTAPE)  # fmt: skip
async def update_mixtape(id: str, body: MixtapeBody, user: UserDep, pool: PoolDep) -> Response:
    row = await social.get_mixtape(pool, id)
    if row is None or row["address"] != user.address:
        raise NotFound("mixtape not found")
    smols = await _checked_smols(pool, body, user.address)
    if not await social.update_mixtape(pool, id, user.address, body.title, body.desc, smols):
        raise NotFound("mixtape not found")  # deleted meanwhile
    return Response(status_code=204)


@router.delete("/mixtapes/{id:mixtapeid}", status_code=204, tags=["mixtapes"], summary="Delete the caller's mixtape",
               responses=OWNED_MIXTAPE)  # fmt: skip
async def delete_mixtape(id: str, user: UserDep, pool: PoolDep) -> Response:
    if not await social.delete_mixtape(pool, id, user.address):
        raise NotFound("mixtape not found")
    return Response(status_code=204)
