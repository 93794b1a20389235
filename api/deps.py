"""What routes receive: resources made once in the app's lifespan, and the caller's identity."""

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from temporalio.client import Client

from smol.errors import Unauthorized
from smol.settings import Settings
from smol.store import ObjectStore
from smol.tokens import verify_token

COOKIE = "smol_token"


@dataclass
class User:
    address: str
    key: str = ""
    username: str = ""


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _store(request: Request) -> ObjectStore:
    return request.app.state.store


def _temporal(request: Request) -> Client:
    return request.app.state.temporal


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(COOKIE)


def _optional_user(request: Request) -> User | None:
    token = _token(request)
    if token is None:
        return None
    claims = verify_token(request.app.state.settings, token)
    return User(address=claims["sub"], key=str(claims.get("key", "")), username=str(claims.get("usr", "")))


def _user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise Unauthorized("authentication required")
    return user


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
StoreDep = Annotated[ObjectStore, Depends(_store)]
TemporalDep = Annotated[Client, Depends(_temporal)]
OptionalUserDep = Annotated[User | None, Depends(_optional_user)]
UserDep = Annotated[User, Depends(_user)]
