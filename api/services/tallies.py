"""Plays and views counted once per listener in a while: asking again and again (a script, a page reloaded) does not
move a smol up trending. A listener is a signed-in address, else a client address (behind a proxy, the one it sends
in X-Forwarded-For when uvicorn trusts it). Kept per API process: with N processes, up to N counts a window."""

import time

from fastapi import Request

MOST_KEPT = 200_000  # (listener, what) pairs remembered at most; past it, those whose window ended are dropped
_counted: dict[tuple[str, str], float] = {}  # (listener, what) -> counted at


def listener(request: Request, viewer: str | None) -> str:
    return viewer or (request.client.host if request.client else "")


def first_in_window(who: str, what: str, seconds: float) -> bool:
    """Whether `who` has not been counted for `what` in the last `seconds` (then this counts, from now)."""
    if seconds <= 0:
        return True
    now = time.monotonic()
    counted = _counted.get((who, what))
    if counted is not None and now - counted < seconds:
        return False
    if len(_counted) >= MOST_KEPT:
        for key in [key for key, at in _counted.items() if now - at >= seconds]:
            del _counted[key]
        if len(_counted) >= MOST_KEPT:  # (all recent: a flood of listeners; counting a few twice is the lesser harm)
            _counted.clear()
    _counted[(who, what)] = now
    return True
