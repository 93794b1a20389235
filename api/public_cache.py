"""The public list (`GET /` without `address`) for anonymous callers, answered from memory for a moment."""

import math
import time
from urllib.parse import parse_qsl

CREDENTIALS = (b"authorization", b"x-api-key", b"cookie")
READS = ("GET", "HEAD", "OPTIONS")
LARGEST = 1 << 20  # bytes of one page kept at most


class PublicListCache:
    """Pure ASGI, inside the CORS and metrics middleware (so both still see every request).

    An anonymous GET of the public list, any page, is answered from memory for `seconds` after it was last made.
    The list already says `Cache-Control: public, max-age=30`: any shared cache may serve a copy that old, so one up
    to `seconds` old tells nobody more. Any request that may change something (a method other than GET, HEAD or
    OPTIONS) empties it, so this process's own writes (a smol made private, deleted) show at once; other processes'
    within `seconds`. A request with credentials always goes through: it may be refused (a revoked key), and with
    `address` it sees the creator's own smols. When a page is due to be made afresh, one request makes it while the
    others get the copy it replaces, so a busy page is not made by every caller at once."""

    def __init__(self, app, seconds: float, pages: int = 256):
        self.app, self.seconds, self.most = app, seconds, pages
        self.pages: dict[bytes, tuple[float, object, list[dict]]] = {}  # query -> (made at, route, messages)
        self.making: set[bytes] = set()
        self.writes = 0  # requests that may have changed something, so far

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.seconds <= 0:
            return await self.app(scope, receive, send)
        if scope["method"] not in READS:
            self._forget()
            try:
                return await self.app(scope, receive, send)
            finally:
                self._forget()  # (a page made while the write ran may hold what it changed)
        if not self._cacheable(scope):
            return await self.app(scope, receive, send)
        key, now, writes = scope["query_string"], time.monotonic(), self.writes
        kept = self.pages.get(key)
        age = now - kept[0] if kept is not None else math.inf
        # While one request makes a page afresh, the others get the copy it replaces (not yet twice as old as allowed)
        # rather than all making it at once.
        if age < self.seconds or (key in self.making and age < 2 * self.seconds):
            scope["route"] = kept[1]  # (what the metrics label the request with)
            for message in kept[2]:
                await send(message)
            return
        messages: list[dict] = []

        async def keep(message):
            messages.append(message)
            await send(message)

        self.making.add(key)
        try:
            await self.app(scope, receive, keep)
        finally:
            self.making.discard(key)
        size = sum(len(m.get("body", b"")) for m in messages)
        whole = messages and messages[0].get("status") == 200 and not messages[-1].get("more_body")
        if whole and size <= LARGEST and self.writes == writes:  # (not made before a write that emptied the memory)
            if len(self.pages) >= self.most:
                self.pages.clear()
            self.pages[key] = (now, scope.get("route"), messages)

    def _forget(self) -> None:
        self.writes += 1
        self.pages.clear()

    @staticmethod
    def _cacheable(scope) -> bool:
        if scope["method"] != "GET" or scope["path"] != "/":
            return False
        if any(name in CREDENTIALS for name, _ in scope["headers"]):
            return False
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        return all(name != "address" for name, _ in query)
