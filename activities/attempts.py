"""Durable steps: an outage of Postgres or the object store is waited out, however long; the step's own failures
are counted and end it after its policy's attempts.

Temporal retries a durable step without an attempt limit (workflows/policies.py), so the count of the step's own
failures cannot be Temporal's attempt number: it travels from one attempt to the next in the activity's heartbeat
details, which Temporal keeps across attempts. Every heartbeat of a durable step must carry it: use `beat()`.
"""

import asyncio
import functools
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from smol.errors import SmolError, to_temporal
from smol.outages import is_outage
from workflows.policies import HEARTBEAT_EVERY, OUTAGE_RETRY_LONGEST, STEP_POLICIES

_failures: ContextVar[int] = ContextVar("step_failures", default=0)


def beat() -> None:
    """Heartbeat, keeping the step's failure count."""
    activity.heartbeat(_failures.get())


@asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY):
    """Heartbeat in the background while the body runs: a long provider call still shows the activity alive, and
    a cancel reaches it."""

    async def beating():
        while True:
            beat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beating())
    try:
        yield
    finally:
        task.cancel()


def _failures_before() -> int:
    details = activity.info().heartbeat_details
    return details[0] if details and isinstance(details[0], int) else 0


def _outage(exc: BaseException) -> ApplicationError:
    """A retry that costs no attempt, sooner at first and at most a minute apart."""
    wait = min(2.0 ** min(activity.info().attempt, 6), OUTAGE_RETRY_LONGEST)
    return ApplicationError(
        f"waiting for a service to come back: {type(exc).__name__}: {exc}",
        type="OutageRetry",
        next_retry_delay=timedelta(seconds=wait),
        category=ApplicationErrorCategory.BENIGN,
    )


def _failure(exc: Exception, failures: int, limit: int) -> ApplicationError:
    """One more failure of the step's own: retryable until the policy's attempts are used up, then final."""
    _failures.set(failures)
    beat()
    final = bool(limit) and failures >= limit
    if isinstance(exc, SmolError):
        return to_temporal(exc, final=final, message=f"{exc} (failed {failures} times)" if final else None)
    if isinstance(exc, ApplicationError):
        message, kind = exc.message, exc.type or "ApplicationError"
    else:
        message, kind = f"{type(exc).__name__}: {exc}", type(exc).__name__
    if final:
        return ApplicationError(f"{message} (failed {failures} times)", type=kind, non_retryable=True)
    return ApplicationError(message, type=kind)


def durable(fn):
    """Make an activity method a durable step (see the module's doc)."""

    @functools.wraps(fn)
    async def run(self, data):
        limit = STEP_POLICIES[activity.info().activity_type].maximum_attempts
        failures = _failures_before()
        token = _failures.set(failures)
        try:
            return await fn(self, data)
        except SmolError as exc:
            if not exc.retryable or exc.benign:
                raise
            raise _failure(exc, failures + 1, limit) from exc
        except ApplicationError as exc:
            if exc.non_retryable or exc.category == ApplicationErrorCategory.BENIGN:
                raise
            raise _failure(exc, failures + 1, limit) from exc
        except Exception as exc:
            if is_outage(exc):
                beat()
                raise _outage(exc) from exc
            raise _failure(exc, failures + 1, limit) from exc
        finally:
            _failures.reset(token)

    return run
