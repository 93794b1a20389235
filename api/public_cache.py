"""Anonymous reads of what anyone may see (the public list and one creator's, search, "more like this", trending,
artists, stats, a tag's smols), answered from memory for a moment."""

import asyncio
import logging
import math
import re
import time
from urllib.parse import parse_qsl, urlencode

from api.deps import (
    CHANGES_WHAT_ANYONE_SEES,
    COOKIE,
    IDENTIFIED,
    SAME_FOR_EVERYONE,
    accepted_caller,
    hides_nothing,
)

CREDENTIALS = (b"authorization", b"x-api-key")  # headers that carry credentials; and the session cookie, wherever
SESSION_COOKIE = COOKIE.lower().encode()  # a Cookie header names it (in any case: a stray one only misses the cache)
READS = ("GET", "HEAD", "OPTIONS")
LARGEST = 1 << 20  # bytes of one answer kept at most
BYTES = 32 << 20  # bytes of all answers kept at most
log = logging.getLogger(__name__)
# The paths kept (what they answer an anonymous caller is the same for every one of them), each with the query
# parameters its route reads: a page is kept by those alone (others change nothing in the answer, so junk added to
# a query neither misses the copy nor fills the memory). tests/test_public_cache.py checks them against the routes.
PATHS = [
    (re.compile(r"/"), ("address", "cursor", "limit")),
    (re.compile(r"/search"), ("instrumental", "limit", "q")),
    (re.compile(r"/search/[^/]+/similar"), ("limit", "refine")),
    (re.compile(r"/trending"), ("limit", "period")),
    (re.compile(r"/artists"), ("limit",)),
    (re.compile(r"/stats"), ()),
    (re.compile(r"/tags/[^/]+"), ("cursor", "limit")),
]


class PublicReadCache:
    """Pure ASGI, inside the CORS and metrics middleware (so both still see every request).

    An anonymous GET of one of `PATHS` is answered from memory with a copy at most 2 × `seconds` old.
    What an anonymous caller sees is what anyone may see, the same for all of them; the public list already says
    `Cache-Control: public, max-age=30`, so any shared cache may serve a copy that old, and one a few seconds old
    tells nobody more.
    - A request that changes what anyone sees (a smol made private, its songs swapped, deleted: see `_write`)
      empties it, so this process's own writes show at once; other processes' within 2 × `seconds` (a new smol
      reaches search only once indexed, about as late anyway).
    - A request with credentials (a bearer token, an API key, the session cookie) may see its owner's private
      smols. Once its credentials pass the routes' own check (`accepted_caller`: a revoked key, an ended session
      still get their 401 from the route), it is answered as anyone is when what anyone sees is what it sees: the
      copy kept was marked by its route as the same for everyone (api/deps.py `SAME_FOR_EVERYONE`: the public list,
      artists, stats), or the caller owns no smol only they may see (smol/repo.py `hides_nothing`, looked up at most
      every `seconds` per caller; a caller's new private smol may thus show in their own search up to 3 × `seconds`
      late, as another process's writes do). Otherwise it goes through. Other cookies (a site's analytics, say)
      change nothing the API answers, so they do not count. An answer made for a known caller (the auth dependency
      marks the request, `IDENTIFIED`: whatever credential it came with) is never kept unless its route marked it
      the same for everyone; one that sets a cookie never is.
    - An answer that is due is made afresh in the background while callers still get the copy it replaces (for up
      to `seconds` more), so nobody waits for a busy page and it is not made by every caller at once; one asked for
      after that is made while its caller waits.
    - Memory is bounded (`pages`, `BYTES`): past either, the answers made longest ago are forgotten first."""

    def __init__(self, app, seconds: float, pages: int = 1024):
        self.app, self.seconds, self.most = app, seconds, pages
        # `_key` -> (made at, route, messages, bytes, the same for everyone), in the order they were made
        self.pages: dict[tuple[str, bytes], tuple[float, object, list[dict], int, bool]] = {}
        self.size = 0
        self.making: set[tuple[str, bytes]] = set()  # made afresh in the background now
        self.writes = 0  # requests that may have changed something, so far
        self.remaking: set[asyncio.Task] = set()
        self.hiding: dict[str, tuple[float, bool]] = {}  # address -> (looked up at, owns nothing only they may see)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.seconds <= 0:
            return await self.app(scope, receive, send)
        if scope["method"] not in READS:
            return await self._write(scope, receive, send)
        key = _key(scope) if scope["method"] == "GET" else None
        if key is None:
            return await self.app(scope, receive, send)
        if _with_credentials(scope):
            if not await self._as_anyone(scope, key):
                return await self._make(scope, receive, send, key)  # (kept only if its route marks it for everyone)
            scope["headers"] = [(name, value) for name, value in scope["headers"] if not _credential(name, value)]
            scope.pop(IDENTIFIED, None)
        kept = self.pages.get(key)  # (after any wait above: a write meanwhile may have emptied the memory)
        age = time.monotonic() - kept[0] if kept is not None else math.inf
        if age < 2 * self.seconds:
            if age >= self.seconds and key not in self.making:  # due: made afresh while this copy still serves
                self._remake(scope, key)
            scope["route"] = kept[1]  # (what the metrics label the request with)
            for message in kept[2]:
                await send(_copy(message))
            return
        await self._make(scope, receive, send, key)

    async def _as_anyone(self, scope, key) -> bool:
        """Whether a request with credentials is answered as anyone is (see the class)."""
        caller = await accepted_caller(scope)
        if caller is None:
            return False
        kept = self.pages.get(key)
        if kept is not None and kept[4] and time.monotonic() - kept[0] < 2 * self.seconds:
            return True
        now, writes, known = time.monotonic(), self.writes, self.hiding.get(caller.address)
        if known is None or now - known[0] >= self.seconds:
            known = (now, await hides_nothing(scope, caller))
            if self.writes == writes:  # (not looked up before a write that emptied the memory)
                if len(self.hiding) >= 4096:
                    self.hiding.clear()
                self.hiding[caller.address] = known
        return known[1]

    async def _write(self, scope, receive, send) -> None:
        """A request that may change something: once one that changes what anyone sees has (its route marks it,
        `CHANGES_WHAT_ANYONE_SEES`: a smol's visibility, songs or deletion, always by its owner), what was kept is
        forgotten, and any answer being made meanwhile is not kept (it may have read the state before). A refused
        one (4xx) changed nothing. Others (a like, a mixtape, a sign-in) leave it: they change nothing kept but
        trending's and stats' counts, which are as late from other processes anyway, and a stream of them would
        otherwise keep the memory empty."""
        status = []

        async def noted(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            if scope.get(CHANGES_WHAT_ANYONE_SEES) and (not status or not 400 <= status[0] < 500):
                self._forget()

    async def _make(self, scope, receive, send, key) -> None:
        made, writes, messages = time.monotonic(), self.writes, []

        async def keep(message):
            messages.append(_copy(message))  # (middleware outside may change the one it is sent)
            await send(message)

        await self.app(scope, receive, keep)
        size = sum(len(m.get("body", b"")) for m in messages)
        whole = messages and messages[0].get("status") == 200 and not messages[-1].get("more_body")
        whole = whole and not any(name == b"set-cookie" for name, _ in messages[0].get("headers", []))
        for_everyone = bool(scope.get(SAME_FOR_EVERYONE))
        whole = whole and (for_everyone or not scope.get(IDENTIFIED))
        if whole and size <= LARGEST and self.writes == writes:  # (not made before a write that emptied the memory)
            self._keep(key, (made, scope.get("route"), messages, size, for_everyone))

    def _remake(self, scope, key) -> None:
        """Make the answer again in the background, as the same request made by nobody (its answer only kept)."""

        async def no_body():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def dropped(message):
            pass

        async def remake():
            try:
                await self._make({**scope, "state": dict(scope.get("state") or {})}, no_body, dropped, key)
            except Exception:  # (the caller got its copy; the next one after the stale window tries again)
                log.exception("remaking %s failed", scope["path"])
            finally:
                self.making.discard(key)

        self.making.add(key)  # (now: the callers right behind this one must not start another)
        task = asyncio.get_running_loop().create_task(remake())
        self.remaking.add(task)  # (a reference, so the task is not collected before it ends)
        task.add_done_callback(self.remaking.discard)

    def _keep(self, key, answer) -> None:
        replaced = self.pages.pop(key, None)
        self.size -= replaced[3] if replaced else 0
        while self.pages and (len(self.pages) >= self.most or self.size + answer[3] > BYTES):
            self.size -= self.pages.pop(next(iter(self.pages)))[3]  # the one made longest ago
        self.pages[key] = answer
        self.size += answer[3]

    def _forget(self) -> None:
        self.writes += 1
        self.pages.clear()
        self.hiding.clear()
        self.size = 0



_keys: dict[tuple[str, bytes], tuple[str, str]] = {}  # (path, raw query) -> `_key`, for the hot pages


def _key(scope) -> tuple[str, str] | None:
    """What a GET is kept by: its path and the query parameters its route reads, as the route reads them (the last
    of repeated ones, decoded as Starlette decodes them); None for a path not kept. (Remembered by the raw request:
    parsing took 5–12 µs, a tenth of an answer from memory.)"""
    raw = (scope["path"], scope["query_string"])
    if (known := _keys.get(raw)) is not None:
        return known
    found = _parsed_key(*raw)
    if found is not None:  # (paths not kept, a smol's say, are not remembered: they would crowd out the hot pages)
        if len(_keys) >= 4096:
            _keys.clear()
        _keys[raw] = found
    return found


def _parsed_key(path: str, query: bytes) -> tuple[str, str] | None:
    for pattern, names in PATHS:
        if pattern.fullmatch(path):
            given = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            return path, urlencode(sorted((name, given[name]) for name in names if name in given))
    return None


def _credential(name: bytes, value: bytes) -> bool:
    return name in CREDENTIALS or (name == b"cookie" and SESSION_COOKIE in value.lower())


def _with_credentials(scope) -> bool:
    return any(_credential(name, value) for name, value in scope["headers"])


def _copy(message: dict) -> dict:
    """The message with a list of headers of its own (CORS middleware adds to the list it is sent)."""
    return {**message, "headers": list(message["headers"])} if "headers" in message else message
