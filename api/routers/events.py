"""Live progress of a smol as Server-Sent Events."""

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.clients import client_of
from api.deps import OptionalUserDep, PoolDep, SettingsDep, TemporalDep, credentials_ended
from api.errors import UNAVAILABLE
from api.services.smols import detail
from api.views import NOT_FOUND, public_base
from smol.errors import ServiceUnavailable, SmolError, TooManyRequests

router = APIRouter(tags=["smols"])
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15
MAX_STREAM_SECONDS = 3600
KEY_CHECK_SECONDS = 5  # a stream opened with an API key or a session ends this soon after either ends
ENDED = ("errored", "terminated")
_open = [0]  # streams open in this process
_open_by: dict[str, int] = {}  # of those, by caller (address, else client address)


class _HeldStream(StreamingResponse):
    """A stream that keeps its caller's place among the open ones from the check until it ends, however it ends
    (a client gone before the first byte included): counting at the check leaves no gap for a burst to slip through."""

    def __init__(self, content, caller: str | None, **kwargs):
        super().__init__(content, **kwargs)
        self._caller = caller
        if caller is not None:
            _open[0] += 1
            _open_by[caller] = _open_by.get(caller, 0) + 1

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            if (caller := self._caller) is not None:
                self._caller = None
                _open[0] -= 1
                if (left := _open_by.pop(caller) - 1) > 0:
                    _open_by[caller] = left


def _finished(body: dict) -> bool:
    return "d1" in body or body.get("wf", {}).get("status") in ENDED


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/{id:smolid}/events",
    summary="Server-Sent Events: the current state first, then one `state` event per step or song change, then `end`",
    responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND},
    response_class=StreamingResponse,
)
async def smol_events(id: str, pool: PoolDep, temporal: TemporalDep, user: OptionalUserDep, request: Request,
                      settings: SettingsDep) -> StreamingResponse:  # fmt: skip
    viewer, base = (user.address if user else None), public_base(request, settings)
    first = await detail(pool, temporal, id, viewer, base)  # 404 before the stream starts
    caller = viewer or client_of(request)
    # (each open stream polls the database twice a second for up to an hour; one of a finished smol ends at once)
    if not _finished(first):
        if _open[0] >= settings.max_event_streams:
            raise ServiceUnavailable("too many live streams at the moment: poll GET /{id} instead, or try again later")
        if _open_by.get(caller, 0) >= settings.max_event_streams_per_client:
            raise TooManyRequests(f"at most {settings.max_event_streams_per_client} live streams open at once per "
                                  "caller: close one, or poll GET /{id}", retry_after=POLL_SECONDS * 10)  # fmt: skip

    async def _events():
        body, last_sent, last_write = first, None, time.monotonic()
        deadline, key_checked = time.monotonic() + MAX_STREAM_SECONDS, time.monotonic()
        while time.monotonic() < deadline:
            # A state event when something happened, not each time the ETA ticks (each event carries the estimate).
            encoded = json.dumps({k: v for k, v in body.items() if k != "progress"}, sort_keys=True)
            if encoded != last_sent:
                yield _event("state", body)
                last_sent, last_write = encoded, time.monotonic()
            if _finished(body):
                yield _event("end", {"status": body.get("wf", {}).get("status", "complete")})
                return
            if time.monotonic() - last_write > KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
            try:
                if user and time.monotonic() - key_checked > KEY_CHECK_SECONDS:
                    if (ended := await credentials_ended(request, user)) is not None:
                        yield _event("error", {"status": 401, "message": ended})
                        return
                    key_checked = time.monotonic()
                body = await detail(pool, temporal, id, viewer, base)
            except SmolError as exc:  # deleted, or Temporal went away: tell the client and close
                yield _event("error", {"status": exc.status_code, "message": str(exc)})
                return
            except UNAVAILABLE:  # Postgres or the store went away mid-stream: the client may reconnect later
                yield _event("error", {"status": 503, "message": "a service behind the API is unavailable"})
                return

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    held_by = None if _finished(first) else caller
    return _HeldStream(_events(), held_by, media_type="text/event-stream", headers=headers)
