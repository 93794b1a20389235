"""API keys for programs: made, listed and revoked by their owner, logged in with a session (a key cannot make keys:
a leaked one could otherwise outlive its revocation)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from api.deps import PoolDep, UserDep
from smol import api_keys
from smol.errors import Conflict, Forbidden, NotFound

router = APIRouter(tags=["keys"])
TEXT = {"content": {"text/plain": {}}}
ERRORS = {401: {"description": "No valid token", **TEXT}, 403: {"description": "Sent with an API key", **TEXT}}
KEY_ID_PATTERN = "^key_[0-9a-f]{16}$"


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$", description="what the key is for")


class CreatedKey(BaseModel):
    id: str
    name: str
    key: str = Field(description="the key itself: shown this once, stored only as a hash")
    prefix: str
    created_at: datetime


class KeyInfo(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the first characters of the key")
    created_at: datetime
    last_used_at: datetime | None


def _session_only(user) -> None:
    if user.api_key is not None:
        raise Forbidden("API keys are managed with a session login, not with an API key")


@router.post("/keys", status_code=201, response_model=CreatedKey, summary="Make an API key (shown once)",
             responses={**ERRORS, 409: {"description": f"{api_keys.MAX_KEYS} live keys already", **TEXT}})  # fmt: skip
async def create_key(body: NewKey, user: UserDep, pool: PoolDep):
    _session_only(user)
    created = await api_keys.create(pool, user.address, body.name, user.key or None, user.generation)
    if created is None:
        raise Conflict(f"at most {api_keys.MAX_KEYS} live API keys; revoke one first")
    return created


@router.get("/keys", response_model=list[KeyInfo], summary="The caller's live API keys", responses=ERRORS)
async def list_keys(user: UserDep, pool: PoolDep):
    _session_only(user)
    return [dict(row) for row in await api_keys.list_for(pool, user.address)]


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key (refused at once)",
               responses={**ERRORS, 404: {"description": "No such live key of the caller's", **TEXT}})  # fmt: skip
async def revoke_key(key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN)], user: UserDep, pool: PoolDep) -> Response:
    _session_only(user)
    if not await api_keys.revoke(pool, user.address, key_id):
        raise NotFound("no such API key")
    return Response(status_code=204)
