"""What routes receive: resources made once in the app's lifespan, and the caller's identity."""

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from temporalio.client import Client

from smol import api_keys, idempotency, passkeys, repo
from smol.errors import Conflict, Forbidden, InvalidInput, ServiceUnavailable, Unauthorized
from smol.settings import Settings
from smol.store import ObjectStore
from smol.tokens import verify_token

COOKIE = "smol_token"
IDENTIFIED = "smol.identified"  # in the ASGI scope of a request whose caller is known, that User: its answer is theirs
# set by a route whose answer does not depend on who asks (api/public_cache.py may then give it to any valid caller)
SAME_FOR_EVERYONE = "smol.same_for_everyone"
# set by a route that may change what anyone sees (a smol's visibility, its songs, its deletion): the read cache
# forgets what it kept once such a request succeeds
CHANGES_WHAT_ANYONE_SEES = "smol.changes_what_anyone_sees"
IDEMPOTENCY_KEY_PATTERN = "^[ -~]{1,255}$"  # printable ASCII


@dataclass
class User:
    address: str
    key: str = ""
    username: str = ""
    api_key: str | None = None  # the id of the API key the request came with (None: a session token)
    generation: int = 0  # of the passkey binding the session token was issued for (`key`)
    expires_at: float | None = None  # when the session token expires (seconds since the epoch; API keys: never)


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _pool(request: Request) -> asyncpg.Pool:
    migrations = getattr(request.app.state, "migrations", None)
    if migrations is not None and not migrations.done():  # the API started while Postgres was down
        raise ServiceUnavailable("the database is unavailable; try again shortly")
    if migrations is not None and migrations.exception() is not None:  # Postgres came back, a migration failed
        raise ServiceUnavailable("the database schema could not be brought up to date; see the API's log")
    return request.app.state.pool


async def _search_pool(request: Request) -> asyncpg.Pool:
    await _pool(request)  # (the same checks)
    return request.app.state.search_pool


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


# Where a JSON body may hold a number that is not finite: NaN, Infinity, or one too large for a float (1e999: an
# exponent of 3 digits or more, or 300 digits and more)
_MAYBE_NOT_FINITE = re.compile(rb"NaN|Infinity|\d[eE]\+?\d{3}|\d{300}")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidInput(f"numbers must be finite: {text[:20]} is not")
    return number


def _refuse_non_finite(constant: str):
    raise InvalidInput(f"numbers must be finite: {constant} is not JSON")


async def refuse_unencodable_text(request: Request) -> None:
    """400 for a JSON body holding a lone surrogate (spelled "\\ud800" in JSON) or a number that is not finite
    (Python's parser takes NaN, Infinity and 1e999): neither could be stored, sent on to Temporal or back to the
    client. Runs for every route; only bodies that may hold one are parsed again."""
    if getattr(request.scope.get("route"), "body_field", None) is None:
        return
    body = await request.body()  # already read (and cached) by FastAPI
    if _MAYBE_NOT_FINITE.search(body):
        try:
            json.loads(body, parse_float=_finite, parse_constant=_refuse_non_finite)
        except (ValueError, RecursionError):
            pass  # not JSON (FastAPI answers that itself), or too deep to check
    if b"\\u" not in body:
        return
    try:
        json.dumps(await request.json(), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidInput("text with a lone surrogate (or otherwise unencodable) is not accepted") from None
    except (ValueError, RecursionError):
        pass  # not JSON (FastAPI answers that itself), or too deep to check


def _api_key(request: Request, token: str | None) -> str | None:
    """The API key of the request: `X-API-Key`, or a bearer token that is one."""
    key = request.headers.get("x-api-key")
    if key is not None:
        return key.strip()
    return token if token is not None and api_keys.looks_like_key(token) else None


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _refuse_cross_site_cookie(request: Request) -> None:
    """A browser sends the session cookie with requests another site's page makes (a form posted from a sibling
    subdomain or another localhost port counts as the same site for SameSite=Lax). A request that changes something
    with the cookie alone must come from our own pages, or from an origin allowed by SMOL_CORS_ORIGINS."""
    if request.method in SAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site in ("same-origin", "none"):
        return
    origin = request.headers.get("origin")
    if origin is None and fetch_site is None:
        return  # not a browser: no page of another site can have sent it
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and (origin == own or origin in request.app.state.settings.cors_origins):
        return
    raise Forbidden("a request with the session cookie must come from this site's own pages")


async def _optional_user(request: Request) -> User | None:
    if (known := request.scope.get(IDENTIFIED)) is not None:  # (checked once a request: the read cache asks first)
        return known
    token = _token(request)
    # (an API key comes in a header only: a cookie holding one would skip the check of where the request came from)
    if (key := _api_key(request, token if request.headers.get("authorization") else None)) is not None:
        found = await api_keys.owner(await _pool(request), key) if api_keys.looks_like_key(key) else None
        if found is None:
            raise Unauthorized("unknown or revoked API key")
        user = request.scope[IDENTIFIED] = User(address=found[1], api_key=found[0])
        return user
    if token is None:
        return None
    if not request.headers.get("authorization"):
        _refuse_cross_site_cookie(request)
    claims = await session_claims(request, token)
    user = request.scope[IDENTIFIED] = User(
        address=claims["sub"], key=str(claims.get("key", "")), username=str(claims.get("usr", "")),
        generation=int(claims.get("gen", 0)), expires_at=int(claims["exp"]),  # (as verify_token read it)
    )  # fmt: skip
    return user


async def session_claims(request: Request, token: str) -> dict:
    """The claims of a valid session token (smol/tokens.py), refusing one whose passkey binding ended: every route
    that reads a token itself (operators', premium) goes through here too."""
    claims = verify_token(request.app.state.settings, token)
    if claims.get("key"):
        await _refuse_ended_session(request, claims)
    return claims


_bindings: dict[tuple[str, str], tuple[float, int | None]] = {}  # (passkey, address) -> looked up at, generation


async def _refuse_ended_session(request: Request, claims: dict, fresh: bool = False) -> None:
    """401 for a passkey session whose binding is gone or was replaced (its generation, smol/passkeys.py), looked up
    at most every `session_check_seconds` per passkey and process (`fresh`: now). (Tokens without a passkey are
    issued by operators' tools, not by sign-in.)"""
    binding, now = (str(claims["key"]), claims["sub"]), time.monotonic()
    kept = _bindings.get(binding)
    if fresh or kept is None or now - kept[0] >= request.app.state.settings.session_check_seconds:
        if len(_bindings) >= 4096:
            _bindings.clear()
        kept = _bindings[binding] = (now, await passkeys.generation(await _pool(request), *binding))
    if kept[1] is None or claims.get("gen", 0) != kept[1]:
        raise Unauthorized("this session has ended: sign in again")


async def pool_and_caller(request: Request, search: bool = False) -> tuple[asyncpg.Pool, User | None]:
    """What `PoolDep` (`search`: `SearchPoolDep`) and `OptionalUserDep` give, for a hot route that asks for them
    itself (each dependency FastAPI solves costs it ~25 µs a request)."""
    return await (_search_pool if search else _pool)(request), await _optional_user(request)


async def end_sessions_everywhere(request: Request) -> None:
    """End every session of the caller's passkey (its binding's next generation): a token that leaked stops working
    within `session_check_seconds` in every process, at once in this one."""
    user = await _optional_user(request)
    if user is None or not user.key:
        raise Unauthorized("ending sessions everywhere needs a passkey session (API keys are revoked at /keys)")
    await passkeys.end_sessions(await _pool(request), user.key, user.address)
    _bindings.pop((user.key, user.address), None)


async def credentials_ended(request: Request, user: User) -> str | None:
    """Why a caller identified a while ago (a long stream) may no longer be answered, or None: their API key was
    revoked (or ended with the session that made it), their session token expired, or their passkey session ended
    (`end_sessions_everywhere`, through any API process: looked up now, not from this process's memo)."""
    if user.expires_at is not None and time.time() >= user.expires_at:
        return "the session token expired: sign in again"
    if user.api_key:
        return None if await api_keys.is_live(await _pool(request), user.api_key) else "the API key was revoked"
    if user.key:
        claims = {"key": user.key, "sub": user.address, "gen": user.generation}
        try:
            await _refuse_ended_session(request, claims, fresh=True)
        except Unauthorized as exc:
            return str(exc)
    return None


async def accepted_caller(scope) -> User | None:
    """The caller, if the request's credentials get past `_optional_user`, else None: a valid caller may be given
    an answer that is the same for them as for anyone; any other request goes to its route, which refuses it as
    usual (401, 403, 503)."""
    try:
        return await _optional_user(Request(scope))
    except Exception:  # (whatever the reason, the route says it properly)
        return None


async def hides_nothing(scope, user: User) -> bool:
    """Whether the caller owns no smol only they may see (smol/repo.py); False when the database cannot say."""
    try:
        return await repo.hides_nothing(await _pool(Request(scope)), user.address)
    except Exception:  # (the route will say what is wrong)
        return False


def same_for_everyone(request: Request) -> None:
    """Mark the answer as one that does not depend on who asks (see `SAME_FOR_EVERYONE`)."""
    request.scope[SAME_FOR_EVERYONE] = True


def changes_what_anyone_sees(request: Request) -> None:
    """Mark the request as one that may change what anyone sees (see `CHANGES_WHAT_ANYONE_SEES`)."""
    request.scope[CHANGES_WHAT_ANYONE_SEES] = True


async def _user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise Unauthorized("authentication required")
    return user


async def viewer_address(request: Request) -> str | None:
    """The caller's address, else None: a missing, expired, broken or revoked credential makes the caller anonymous
    (for media, which <img> and <audio> load with whatever cookie the browser still holds)."""
    try:
        user = await _optional_user(request)
    except Unauthorized:
        return None
    return user.address if user else None


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
SearchPoolDep = Annotated[asyncpg.Pool, Depends(_search_pool)]  # (smol.db.open_pool: plans_once)
StoreDep = Annotated[ObjectStore, Depends(_store)]
TemporalDep = Annotated[Client, Depends(_temporal)]
OptionalUserDep = Annotated[User | None, Depends(_optional_user)]
UserDep = Annotated[User, Depends(_user)]


class Idempotent:
    """Answers a creating request once per `Idempotency-Key` of its caller (smol/idempotency.py); without the header
    the request is simply answered."""

    def __init__(self, request: Request, pool: asyncpg.Pool, address: str, key: str | None):
        self.request, self.pool, self.address, self.key = request, pool, address, key

    async def run(self, answer: Callable[[], Awaitable[Response]]) -> Response:
        if self.key is None:
            return await answer()
        digest = idempotency.request_hash(self.request.method, self.request.url.path, await self.request.body())
        stored = await idempotency.begin(self.pool, self.address, self.key, digest)
        if stored is not None:
            if not stored.same:
                message = "this Idempotency-Key was used with a different request"
                raise RequestValidationError([{"loc": ("header", "Idempotency-Key"), "msg": message,
                                               "type": "value_error", "input": self.key}])  # fmt: skip
            if stored.status is None:
                raise Conflict("the first request with this Idempotency-Key is still being answered; try again shortly")
            return Response(stored.body, status_code=stored.status, media_type=stored.content_type,
                            headers={"Idempotent-Replayed": "true"})  # fmt: skip
        try:
            response = await answer()
        except BaseException:
            await asyncio.shield(idempotency.forget(self.pool, self.address, self.key))
            raise
        if response.status_code >= 400:
            await idempotency.forget(self.pool, self.address, self.key)
        else:
            content_type = response.headers.get("content-type", "application/octet-stream")
            await idempotency.finish(self.pool, self.address, self.key, response.status_code, content_type,
                                     bytes(response.body))  # fmt: skip
        return response


async def _idempotent(request: Request, pool: PoolDep, user: UserDep,
                      idempotency_key: str | None = Header(None, pattern=IDEMPOTENCY_KEY_PATTERN, description=(
                          "any unique string (e.g. a UUID): the same request again with it within 24 h gets the "
                          "first answer, without anything being done twice"))) -> Idempotent:  # fmt: skip
    return Idempotent(request, pool, user.address, idempotency_key)


IdempotentDep = Annotated[Idempotent, Depends(_idempotent)]
IDEMPOTENCY_ERRORS = {
    409: {"description": "The first request with this Idempotency-Key is still being answered",
          "content": {"text/plain": {}}},
}  # fmt: skip
