"""Plays and views counted once per listener in a while: asking again and again (a script, a page reloaded) does not
move a smol up trending. A listener is a signed-in address, else a client (`client_of`: behind a proxy, the address
it sends in X-Forwarded-For when uvicorn trusts it; an IPv6 one's /64). Kept per API process: with N processes, up to
N counts a window."""

import time
from collections import OrderedDict

from fastapi import Request

from api.clients import client_of

MOST_KEPT = 200_000  # (listener, what) pairs remembered at most; past it the oldest are forgotten
_counted: OrderedDict[tuple[str, str], float] = OrderedDict()  # (listener, what) -> counted at, oldest first


def listener(request: Request, viewer: str | None) -> str:
    return viewer or client_of(request)


def claim(who: str, what: str, seconds: float) -> bool:
    """Whether `who` has not been counted for `what` in the last `seconds`; if so it counts from now, until `release`
    (for when nothing was counted after all: a 404, a smol still being made)."""
    if seconds <= 0:
        return True
    now = time.monotonic()
    key = (who, what)
    counted = _counted.get(key)
    if counted is not None and now - counted < seconds:
        return False
    while _counted and (len(_counted) >= MOST_KEPT or now - next(iter(_counted.values())) >= seconds):
        _counted.popitem(last=False)  # the oldest: its window ended, or a flood of listeners (counting twice is lesser)
    _counted.pop(key, None)
    _counted[key] = now
    return True


def release(who: str, what: str) -> None:
    _counted.pop((who, what), None)
