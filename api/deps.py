"""What routes receive: resources made once in the app's lifespan, and the caller's identity."""

import json
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from temporalio.client import Client

from smol.errors import InvalidInput, ServiceUnavailable, Unauthorized
from smol.settings import Settings
from smol.store import ObjectStore
from smol.tokens import verify_token

COOKIE = "smol_token"


@dataclass
class User:
    address: str
    key: str = ""
    username: str = ""


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _pool(request: Request) -> asyncpg.Pool:
    migrations = getattr(request.app.state, "migrations", None)
    if migrations is not None and not migrations.done():  # the API started while Postgres was down
        raise ServiceUnavailable("the database is unavailable; try again shortly")
    if migrations is not None and migrations.exception() is not None:  # Postgres came back, a migration failed
        raise ServiceUnavailable("the database schema could not be brought up to date; see the API's log")
    return request.app.state.pool


async def _store(request: Request) -> ObjectStore:
    return request.app.state.store


async def _temporal(request: Request) -> Client:
    return request.app.state.temporal


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(COOKIE)


async def refuse_unencodable_text(request: Request) -> None:
    """400 for a JSON body holding a lone surrogate (spelled "\\ud800" in JSON): it could be neither stored nor
    sent on to Temporal or back to the client. Runs for every route; only bodies with a `\\u` escape are checked."""
    if getattr(request.scope.get("route"), "body_field", None) is None:
        return
    body = await request.body()  # already read (and cached) by FastAPI
    if b"\\u" not in body:
        return
    try:
        json.dumps(await request.json(), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidInput("text with a lone surrogate (or otherwise unencodable) is not accepted") from None
    except (ValueError, RecursionError):
        pass  # not JSON (FastAPI answers that itself), or too deep to check


async def _optional_user(request: Request) -> User | None:
    token = _token(request)
    if token is None:
        return None
    claims = verify_token(request.app.state.settings, token)
    return User(address=claims["sub"], key=str(claims.get("key", "")), username=str(claims.get("usr", "")))


async def _user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise Unauthorized("authentication required")
    return user


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
StoreDep = Annotated[ObjectStore, Depends(_store)]
TemporalDep = Annotated[Client, Depends(_temporal)]
OptionalUserDep = Annotated[User | None, Depends(_optional_user)]
UserDep = Annotated[User, Depends(_user)]
