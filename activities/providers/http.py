"""Calling a provider's HTTP API: transient failures are retryable, refusals are not, and no secret leaks."""

import httpx

from activities.providers import ProviderError

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


async def send(
    http: httpx.AsyncClient, service: str, method: str, url: str, *, secret: str = "", **kwargs
) -> httpx.Response:
    """The response if it is 2xx; else a ProviderError that says what happened without any credential in it."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise ProviderError(f"{service} did not answer in time") from None
    except httpx.TransportError as exc:
        raise ProviderError(f"{service} could not be reached ({type(exc).__name__})") from None
    if response.is_success:
        return response
    detail = response.text[:200].replace(secret, "***") if secret else response.text[:200]
    message = f"{service} answered {response.status_code}: {detail}"
    if response.status_code in TRANSIENT_STATUS:
        raise ProviderError(message)
    raise ProviderError(message, retryable=False, kind="ProviderRejected")


def json_of(response: httpx.Response, service: str):
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{service} sent a body that is not JSON") from None
