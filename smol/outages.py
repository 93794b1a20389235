"""Telling an outage of what we run on (Postgres, the object store) from a mistake: an outage passes, so whatever met
it waits and tries again, however long it lasts; a mistake does not."""

import asyncpg
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as S3Unreachable

# Connection refused or reset, timeouts, "the database system is starting up / shutting down", no free connection.
# (The API answers all of these 503; the pipeline waits them out, see `is_outage`.)
DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)
# Where an OSError means the service is unreachable or failing (a refused or missing socket, a full disk), not that
# the data is bad: OSError is also what Pillow raises for a broken image.
SERVICE_PACKAGES = {"asyncpg", "aiobotocore", "botocore", "aiohttp", "smol.store"}
S3_BUSY_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}


def _raised_in_service(exc: BaseException) -> bool:
    frame = exc.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module in SERVICE_PACKAGES or module.split(".", 1)[0] in SERVICE_PACKAGES:
            return True
        frame = frame.tb_next
    return False


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a service we depend on is down or overloaded (not that the request or the data was wrong)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        return _raised_in_service(exc)
    if isinstance(exc, DATABASE_DOWN):
        return True
    if isinstance(exc, S3Unreachable | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error.get("Code") in S3_BUSY_CODES
    return False
