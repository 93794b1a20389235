"""How failures that are not the API's fault become answers: a service behind it down → 503 with Retry-After,
unencodable text → 400, validation errors that never echo what cannot be encoded."""

import logging
import math

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.routing import Match

from smol.outages import DATABASE_DOWN

log = logging.getLogger("smol.api")
RETRY_AFTER = "5"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Postgres or the object store unreachable, restarting, out of connections or resources (smol.outages, which the
# pipeline's durable steps wait out), and any S3 error: none of them is the client's fault.
# A deadlock or serialization failure passes on a retry as well.
UNAVAILABLE = (*DATABASE_DOWN, asyncpg.InsufficientResourcesError, asyncpg.TransactionRollbackError, BotoCoreError,
               ClientError)  # fmt: skip


async def service_unavailable(request: Request, exc: Exception) -> PlainTextResponse:
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # asyncpg's DataError: a query argument it cannot encode, which only a client's input can be
        return PlainTextResponse("text with invalid characters cannot be stored", status_code=400)
    log.warning("%s %s: a service behind the API is unavailable: %r", request.method, request.url.path, exc)
    return PlainTextResponse(
        "a service behind the API is unavailable; try again shortly", status_code=503,
        headers={"Retry-After": RETRY_AFTER},
    )  # fmt: skip


def _escaped(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    return value


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 `{"detail": [...]}`, except that input it cannot encode is escaped (and answered 400)."""
    detail = jsonable_encoder(exc.errors())
    try:
        return JSONResponse({"detail": detail}, status_code=422)
    except (UnicodeEncodeError, ValueError):  # (ValueError: a number that is not finite, which JSON cannot hold)
        return JSONResponse({"detail": _escaped(detail)}, status_code=400)


def allowed_methods(request: Request) -> str:
    """Every method the path answers, for `Allow` on a 405 (Starlette's names only the first route on the path)."""

    def answers(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)

    return ", ".join(method for method in METHODS if answers(method))


def add_error_handlers(app: FastAPI) -> None:
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, service_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
