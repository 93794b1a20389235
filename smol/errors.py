"""Every error of ours, in one hierarchy.

`status_code` is the API's answer to it. `retryable` says whether a workflow step that failed with it may be tried
again. Activities raise these; `to_temporal` turns one into Temporal's ApplicationError (its type is the class name),
and is the only place that does (activities/failures.py applies it to every activity; workflows call it directly).
The retry policies' list of non-retryable types comes from the classes (`non_retryable_types`).
"""

from datetime import timedelta

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory


class SmolError(Exception):
    status_code = 400
    retryable = False
    benign = False  # an expected wait, not a failure: Temporal neither logs nor counts it as one
    next_retry_delay: timedelta | None = None

    def __init__(self, message: str = "", *, retryable: bool | None = None):
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


# What the API answers with.


class InvalidInput(SmolError):
    status_code = 400


class Unauthorized(SmolError):
    status_code = 401


class Forbidden(SmolError):
    status_code = 403


class NotFound(SmolError):
    status_code = 404


class Conflict(SmolError):
    status_code = 409


class TooManyRequests(SmolError):
    status_code = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(SmolError):
    status_code = 503
    retryable = True


class StartUncertain(ServiceUnavailable):
    """Temporal stopped answering while starting a run, and again when asked whether it had started."""


class RangeNotSatisfiable(SmolError):
    status_code = 416

    def __init__(self, size: int):
        super().__init__("range not satisfiable")
        self.size = size


# Why a step of a workflow failed.


class StepFailed(SmolError):
    """A step could not do its work now; Temporal tries it again within its policy."""

    status_code = 502
    retryable = True


class ProviderError(StepFailed):
    """An AI provider call failed. `lost`: the request may have reached the provider, which may have done (and charged
    for) the work, but its answer never arrived (a timeout, a dropped connection)."""

    def __init__(self, message: str, *, retryable: bool | None = None, lost: bool = False):
        super().__init__(message, retryable=retryable)
        self.lost = lost


class ProviderRejected(ProviderError):
    """The provider refused the request itself (4xx other than 408/429): asking again cannot help."""

    retryable = False


class ProviderUnavailable(ProviderError):
    """The provider asked for is not configured on this worker."""

    retryable = False


class PromptRefused(ProviderError):
    """The provider's content policy refused the prompt."""

    retryable = False


class PaidCallLimit(ProviderError):
    """The run made SMOL_MAX_PAID_CALLS_PER_STEP paid requests for this step: no more."""

    retryable = False


class ProvidersExhausted(ProviderError):
    """Every provider of the chain failed, at least one of them for a reason that may pass."""


class ProvidersRefused(ProviderError):
    """Every provider of the chain failed for good."""

    retryable = False


class IncompleteLyrics(StepFailed):
    """The lyrics came back without a title, words or two style tags."""


class SongFailed(StepFailed):
    retryable = False


class SongStalled(StepFailed):
    retryable = False


class SongsNotReady(StepFailed):
    """Polled songs are not done: Temporal asks again after `delay`, without counting a failure."""

    benign = True

    def __init__(self, delay: timedelta):
        super().__init__("songs not ready yet")
        self.next_retry_delay = delay


class DuplicateSongId(StepFailed):
    retryable = False


class SongIdTaken(Conflict):
    """A provider's song id already belongs to another smol; the next try looks again."""

    retryable = True


class WebhookRefused(StepFailed):
    retryable = False


class WebhookUnreachable(StepFailed):
    pass


class WebhookRetry(StepFailed):
    pass


class InvalidMint(InvalidInput):
    pass


class AlreadyMinted(StepFailed):
    retryable = False


class MintNotConfigured(StepFailed):
    pass


class MintRejected(StepFailed):
    retryable = False


class MintUnreadable(StepFailed):
    """The chain's answer to a mint could not be read."""

    retryable = False


class StellarBusy(StepFailed):
    pass


class StellarRpcError(StepFailed):
    """The Stellar RPC could not answer (retryable) or answered a JSON-RPC error (not retryable)."""


class MintExpired(StepFailed):
    retryable = False


class MintFailed(StepFailed):
    retryable = False


class InvalidPlan(StepFailed):
    """The daily plan does not load (SMOL_CATALOG_PLAN): fixing it needs an operator."""

    retryable = False


class PremiumFailed(StepFailed):
    """No provider of the premium chain made the track."""


class CatalogInvalid(StepFailed):
    """The catalogs failed validation (a rebuild running meanwhile may explain it: tried again)."""


def to_temporal(exc: SmolError, *, final: bool = False, message: str | None = None) -> ApplicationError:
    """The ApplicationError Temporal records for `exc`; `final` makes it non-retryable whatever its class says."""
    return ApplicationError(
        message or str(exc),
        type=type(exc).__name__,
        non_retryable=final or not exc.retryable,
        next_retry_delay=exc.next_retry_delay,
        category=ApplicationErrorCategory.BENIGN if exc.benign else ApplicationErrorCategory.UNSPECIFIED,
    )


def non_retryable_types() -> list[str]:
    """The names of every error class that is never retried, for the retry policies."""
    found, pending = [], [SmolError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.retryable and cls.__module__ == __name__:
            found.append(cls.__name__)
    return sorted(set(found))
