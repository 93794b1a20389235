"""The FastAPI app: resources made once in the lifespan, routers, and one handler for domain errors."""

import asyncio
import gc
import logging
import math
import re
import sys
from contextlib import asynccontextmanager
from functools import partial

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import refuse_unencodable_text
from api.errors import UNAVAILABLE, add_error_handlers, allowed_methods
from api.metrics import MetricsMiddleware, metrics_endpoint
from api.openapi import completed_openapi
from api.public_cache import PublicReadCache
from api.web import web_app
from smol.db import REQUEST_STATEMENT_MS, create_pool, migrate
from smol.errors import RangeNotSatisfiable, SmolError, TooManyRequests
from smol.ids import MIXTAPE_ID_PATTERN, MUSIC_ID_PATTERN, SMOL_ID_PATTERN
from smol.logs import configure
from smol.settings import Settings, command_line_host, get_settings, is_loopback
from smol.store import open_store
from smol.temporal import connect


class _RegexConvertor(Convertor):
    def __init__(self, pattern: str):
        self.regex = pattern.strip("^$")
        self._full = re.compile(pattern)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("smolid", _RegexConvertor(SMOL_ID_PATTERN))
register_url_convertor("musicid", _RegexConvertor(MUSIC_ID_PATTERN))
register_url_convertor("mixtapeid", _RegexConvertor(MIXTAPE_ID_PATTERN))
register_url_convertor("control", _RegexConvertor("^(pause|resume|cancel)$"))


def _text(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


# Any route may meet these: a malformed request, a bad token, a body over the limit, Temporal being down.
COMMON_ERRORS = {
    400: _text("Bad request"),
    401: _text("Missing, malformed, wrongly signed or expired token"),
    404: _text("Not found"),
    413: _text("Request body too large"),
    503: _text("A service behind the API is unavailable; see Retry-After"),
}


async def _migrate_when_reachable(pool: asyncpg.Pool) -> None:
    while True:
        try:
            await migrate(pool)
            return
        except UNAVAILABLE as exc:
            logging.getLogger("smol.api").warning("database unavailable (%r); migrating when it is back", exc)
            await asyncio.sleep(2)


class LoopbackOnly:
    """With built-in development secrets, answer only connections that arrived on a loopback address, whatever the
    launcher bound to (`fastapi run`, gunicorn, 0.0.0.0): anyone who can reach the API from elsewhere could forge
    sessions with a secret that is in the source."""

    def __init__(self, app, secrets: list[str]):
        self.app, self.secrets = app, secrets

    async def __call__(self, scope, receive, send):
        server = scope.get("server") or ("",)
        if scope["type"] == "http" and server[0] and not is_loopback(str(server[0])):
            message = f"this API runs with built-in development secrets ({', '.join(self.secrets)}): set them"
            await PlainTextResponse(message, status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # uvicorn's --host is not handed to the app: read from the command line (other launchers: SMOL_API_HOST).
    settings.refuse_dev_secrets(settings.api_host, command_line_host(sys.argv) or settings.api_host)

    configure(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        # (connects on first use; a statement past 10 s is cancelled, 503: none of a request's should come close,
        # and one that does must not hold a connection for long. A search is cancelled after 2 s.)
        app.state.pool = await create_pool(settings, min_size=0, max_size=20, timeout_ms=REQUEST_STATEMENT_MS)
        app.state.search_pool = await create_pool(settings, min_size=0, max_size=10, plans_once=True, timeout_ms=2000)
        app.state.migrations = asyncio.create_task(_migrate_when_reachable(app.state.pool))
        await asyncio.wait([app.state.migrations], timeout=5)  # with Postgres down the API starts anyway (503s)
        if app.state.migrations.done():
            app.state.migrations.result()  # a broken migration stops the start
        app.state.store = open_store(settings)
        app.state.temporal = await connect(settings, lazy=True)
        # What is loaded by now lives as long as the process: the collector need not look at it again. (A full
        # collection walked it all, stopping every request for 90–130 ms about every 10 s under load.)
        gc.collect()  # (garbage of startup, e.g. a retried migration's tracebacks, is not kept for good)
        gc.freeze()
        try:
            yield
        finally:
            app.state.migrations.cancel()
            await app.state.store.close()
            await app.state.pool.close()
            await app.state.search_pool.close()

    app = FastAPI(
        title="Smol",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
        responses=COMMON_ERRORS,
        dependencies=[Depends(refuse_unencodable_text)],
        description="Durable AI music generation on Temporal, with the original Smol HTTP contract.",
    )

    add_error_handlers(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> PlainTextResponse:
        headers = {**(exc.headers or {}), "Allow": allowed_methods(request)} if exc.status_code == 405 else exc.headers
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=headers)

    @app.exception_handler(asyncpg.exceptions.DataError)
    async def unstorable_text(request: Request, exc: Exception) -> PlainTextResponse:
        # Postgres refused a value (text with NUL or outside UTF-8, a number out of range): the input is wrong.
        return PlainTextResponse("a value in the request cannot be stored", status_code=400)

    @app.exception_handler(SmolError)
    async def domain_error(request: Request, exc: SmolError) -> PlainTextResponse:
        headers = {"Content-Range": f"bytes */{exc.size}"} if isinstance(exc, RangeNotSatisfiable) else None
        if exc.status_code == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if exc.status_code == 503:
            headers = {"Retry-After": "5"}
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return PlainTextResponse(str(exc), status_code=exc.status_code, headers=headers)

    app.add_middleware(PublicReadCache, seconds=settings.public_list_cache_seconds)  # (innermost: added first)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Range", "If-None-Match", "X-API-Key", "Idempotency-Key"],
            expose_headers=["Content-Range", "Accept-Ranges", "ETag", "Retry-After", "Content-Disposition",
                            "Idempotent-Replayed"],
        )

    app.add_middleware(MetricsMiddleware)
    if settings.dev_secrets():
        app.add_middleware(LoopbackOnly, secrets=settings.dev_secrets())
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        try:
            async with asyncio.timeout(2):  # (all of it: a query's own timeout then waits for its cancel and release)
                await app.state.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return PlainTextResponse("database unavailable", status_code=503, headers={"Retry-After": "5"})
        return PlainTextResponse("ok")

    from api.routers import auth, catalog, codec, events, keys, media, mint, search, smols, social

    app.add_middleware(codec.CodecCors, origins=settings.codec_cors_origins)
    # (the most asked routes first: a request is matched against the routes in this order)
    app.include_router(search.router)
    app.include_router(smols.router)
    app.include_router(auth.router)
    app.include_router(keys.router)
    app.include_router(codec.router)
    app.include_router(media.router)
    app.include_router(social.router)
    app.include_router(events.router)
    app.include_router(mint.router)
    app.include_router(catalog.router)
    app.mount("/app", web_app(), name="app")
    app.openapi = partial(completed_openapi, app, settings)
    return app


app = create_app()
