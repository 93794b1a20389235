"""Timeout and retry policy of every pipeline activity, in one table to read and tune."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from smol.errors import non_retryable_types

# attempts 0 = no limit (poll_songs: the stall limit, measured in the activity, ends it)
NON_RETRYABLE_ERRORS = non_retryable_types()
# How long a durable step may wait for Postgres or the object store to come back before the smol fails (visibly, and
# retryable by its creator). Within it, an outage costs no attempt: `attempts` count the step's own failures.
OUTAGE_PATIENCE = timedelta(days=7)


@dataclass(frozen=True)
class StepPolicy:
    timeout: timedelta
    initial_interval: timedelta
    maximum_interval: timedelta
    maximum_attempts: int
    backoff: float = 2.0
    heartbeat: timedelta | None = None
    # Durable steps outlast any outage of Postgres or the object store: Temporal retries them without an attempt
    # limit for OUTAGE_PATIENCE, and the activity itself ends them after `maximum_attempts` failures of their own
    # (activities/attempts.py), so a broken provider still fails fast.
    durable: bool = False

    def activity_options(self) -> dict:
        return {
            # On cancel, wait for the running activity to stop, so clean-up never races a late write.
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "start_to_close_timeout": self.timeout,
            "schedule_to_close_timeout": OUTAGE_PATIENCE if self.durable else None,
            "heartbeat_timeout": self.heartbeat,
            "retry_policy": RetryPolicy(
                initial_interval=self.initial_interval,
                backoff_coefficient=self.backoff,
                maximum_interval=self.maximum_interval,
                maximum_attempts=0 if self.durable else self.maximum_attempts,
                non_retryable_error_types=NON_RETRYABLE_ERRORS,
            ),
        }


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# Activities that call providers heartbeat (every 2 s) with a 10 s timeout: a worker that dies mid-call is noticed
# then. Their start-to-close is long: a slow provider that is still working is waited for (abandoning it would pay
# for the same work again); the provider's own HTTP timeout (SMOL_PROVIDER_TIMEOUT) ends a call that never answers.
# `attempts` of durable steps count the step's own failures only; outages of Postgres or the store do not count.
#                                   timeout   first try   longest wait  attempts
STEP_POLICIES: dict[str, StepPolicy] = {
    "load_steps":      StepPolicy(_s(15),     _s(1),      _s(10),       10, durable=True),
    "save_payload":    StepPolicy(_s(15),     _s(1),      _s(10),       10, durable=True),
    "generate_image":  StepPolicy(_s(1800),   _s(2),      _s(60),       6,  heartbeat=_s(10), durable=True),
    "describe_image":  StepPolicy(_s(1800),   _s(2),      _s(30),       6,  heartbeat=_s(10), durable=True),
    "generate_lyrics": StepPolicy(_s(1800),   _s(2),      _s(60),       6,  heartbeat=_s(10), durable=True),
    "check_nsfw":      StepPolicy(_s(1800),   _s(2),      _s(30),       6,  heartbeat=_s(10), durable=True),
    "submit_songs":    StepPolicy(_s(1800),   _s(2),      _s(60),       6,  heartbeat=_s(10), durable=True),
    "poll_songs":      StepPolicy(_s(1800),   _s(2),      _s(30),       0,  heartbeat=_s(10), durable=True),
    "archive_song":    StepPolicy(_s(600),    _s(2),      _s(60),       30, heartbeat=_s(10), durable=True),
    "store_results":   StepPolicy(_s(30),     _s(1),      _s(10),       10, durable=True),
    "discard_smol":    StepPolicy(_s(60),     _s(1),      _s(10),       10, durable=True),
    "deliver_webhook": StepPolicy(_s(30),     _s(1),      _s(300),      12),
}  # fmt: skip

# MintWorkflow. Submitting is retried briefly (a transaction already marked sent is never sent again); confirming
# polls inside one heartbeating activity until the transaction is included or provably expired.
MINT_POLICIES: dict[str, StepPolicy] = {
    "check":   StepPolicy(_s(30),     _s(1),      _s(10),       5),
    "sign":    StepPolicy(_s(30),     _s(1),      _s(10),       10),
    "submit":  StepPolicy(_s(30),     _s(1),      _s(10),       10),
    "confirm": StepPolicy(_s(600),    _s(2),      _s(30),       10, heartbeat=_s(10)),
    "record":  StepPolicy(_s(30),     _s(1),      _s(10),       10),
    "fail":    StepPolicy(_s(30),     _s(1),      _s(10),       10),
}  # fmt: skip

# The indexing steps, for this workflow and for SmolWorkflow after `store_results`. Not durable (activities/attempts):
# a smol that cannot be indexed now is found by the next backfill.
#                           timeout                 first try              longest wait            attempts
INDEX_POLICIES: dict[str, StepPolicy] = {
    "analyze":   StepPolicy(_s(120),  _s(1),  _s(30),  5),
    "index":     StepPolicy(_s(30),  _s(1),  _s(10),  10),
    "unindexed": StepPolicy(_s(30),  _s(1),  _s(10),  10),
}  # fmt: skip

# The SoundFlow catalog (workflows/catalog.py).
#                                  timeout   first try   longest wait  attempts
CATALOG_POLICIES: dict[str, StepPolicy] = {
    "plan_day":     StepPolicy(_s(30),     _s(1),      _s(10),       5),
    "render_track": StepPolicy(_s(600),    _s(2),      _s(30),       5,  heartbeat=_s(10)),
    "make_premium": StepPolicy(_s(1800),   _s(5),      _s(60),       3,  heartbeat=_s(10)),
    "rebuild":      StepPolicy(_s(120),    _s(1),      _s(10),       10),
    # a rebuild of another day running meanwhile can make the files disagree for a moment: checked again
    "validate":     StepPolicy(_s(600),    _s(3),      _s(10),       4,  heartbeat=None),
}  # fmt: skip

# Timing inside the activities: their own loops, which Temporal's retry policies above do not see.
HEARTBEAT_EVERY = 2.0  # seconds between heartbeats of a long provider call or poll (heartbeat timeouts: 10 s)
POLL_INSIDE_UP_TO = 10.0  # song poll intervals up to this many seconds wait inside one heartbeating activity
OUTAGE_RETRY_LONGEST = 60.0  # a durable step waiting out an outage is tried again at most this many seconds apart
WRITE_THROUGH_OUTAGE = 45.0  # a write after a paid call retries through an outage this long (attempt without timeout)
WRITE_MARGIN = 10.0  # ... or until this many seconds before the attempt's timeout, to report before Temporal gives up
PROVIDER_RETRY_PAUSE = 0.5  # first pause between the quick attempts at one provider of a chain (then doubled)
MINT_CONFIRM_EVERY = (1.0, 1.5, 10.0)  # confirming a mint: first interval, growth, longest interval (seconds)
MINT_BUILDS = 3  # transactions built for one mint before it fails as expired
