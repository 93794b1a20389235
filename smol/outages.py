"""Telling an outage of what we run on (Postgres, the object store) from a mistake: an outage passes, so whatever met
it waits and tries again, however long it lasts; a mistake does not."""

import asyncpg

# Connection refused or reset, timeouts, "the database system is starting up / shutting down", no free connection.
DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)
S3_BUSY_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a service we depend on is down or overloaded (not that the request was wrong)."""
    if isinstance(exc, DATABASE_DOWN):
        return True
    try:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    except ImportError:  # pragma: no cover - aioboto3 is a dependency
        return False
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error.get("Code") in S3_BUSY_CODES
    return False
