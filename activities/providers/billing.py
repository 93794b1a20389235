"""Counting what a provider may bill: each request that makes it do paid work (a POST that draws, writes, composes
or starts a prediction; not a look-up, a poll or a download) is one unit. A unit is counted when the provider
answered, and when its answer was lost after the request went out (it may have done the work); a refusal is not.

The pipeline opens a `Meter` around each provider call (activities/pipeline.py `_recorded`); adapters wrap each
billable request in `billable()`, which first asks the meter's guard whether one more unit may be spent."""

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from smol.errors import ProviderError


@dataclass
class Meter:
    guard: Callable[[int], Awaitable[None]] | None = None  # given the units spent in this call; raises when no more
    units: int = 0


_meter: ContextVar[Meter | None] = ContextVar("billing_meter", default=None)


@asynccontextmanager
async def metered(meter: Meter):
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


@asynccontextmanager
async def billable():
    """Around one request that may be billed."""
    meter = _meter.get()
    if meter is None:
        yield
        return
    if meter.guard is not None:
        await meter.guard(meter.units)
    try:
        yield
    except ProviderError as exc:
        meter.units += exc.lost
        raise
    except BaseException:  # cancelled or timed out mid-request: the provider may have done the work
        meter.units += 1
        raise
    meter.units += 1
