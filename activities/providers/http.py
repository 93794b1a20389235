"""Calling a provider's HTTP API: transient failures are retryable, refusals are not, and no secret leaks."""

from contextlib import nullcontext

import httpx

from activities.providers.billing import billable
from smol.errors import ProviderError, ProviderRejected

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


async def send(
    http: httpx.AsyncClient, service: str, method: str, url: str, *, secret: str = "", **kwargs
) -> httpx.Response:
    """The response if it is 2xx; else a ProviderError that says what happened without any credential in it.
    A POST asks the provider for paid work: it is metered (billing.py)."""
    async with billable() if method == "POST" else nullcontext():
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise unanswered(service, exc) from None
        if response.is_success:
            return response
        raise refusal(service, response.status_code, response.text, secret)


def unanswered(service: str, exc: httpx.HTTPError) -> ProviderError:
    """The error for a request without an answer. Unless the connection was never made, the provider may have done
    the work: the call is `lost` (and counted as paid)."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderError(f"{service} could not be reached ({type(exc).__name__})")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"{service} did not answer in time", lost=True)
    return ProviderError(f"{service} answer was lost ({type(exc).__name__})", lost=True)


def refusal(service: str, status_code: int, text: str, secret: str = "") -> ProviderError:
    """The error for a non-2xx answer: retryable when the status says it is passing, with no credential in it."""
    detail = text[:200].replace(secret, "***") if secret else text[:200]
    message = f"{service} answered {status_code}: {detail}"
    if status_code in TRANSIENT_STATUS:
        return ProviderError(message)
    return ProviderRejected(message)


def json_of(response: httpx.Response, service: str):
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{service} sent a body that is not JSON") from None


MAX_AUDIO_BYTES = 50 * 1024 * 1024


async def download_finished(provider, music_id: str, audio_url: str | None) -> bytes:
    """A song provider's finished audio: from the URL its poll gave, else from asking it once more."""
    if audio_url is None:
        (song,) = await provider.poll([music_id])
        if not song.complete or not song.audio:
            raise ProviderError(f"{provider.name} has no finished audio for {music_id}")
        audio_url = song.audio
    return await download_audio(provider.http, provider.name, audio_url)


async def download_audio(http: httpx.AsyncClient, service: str, url: str) -> bytes:
    """Stream a finished song, refusing anything that is not audio or is larger than the cap."""
    try:
        async with http.stream("GET", url) as response:
            if not response.is_success:
                raise ProviderError(f"{service} audio download answered {response.status_code}",
                                    retryable=response.status_code >= 500)  # fmt: skip
            return await read_audio(response, service)
    except httpx.HTTPError as exc:
        raise ProviderError(f"{service} audio download failed ({type(exc).__name__})") from None


async def read_audio(response: httpx.Response, service: str) -> bytes:
    """The body of a streamed audio response, if it is audio and under the cap."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if not kind.startswith("audio/"):
        raise ProviderError(f"{service} audio has content type {kind!r}", retryable=False)
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_AUDIO_BYTES:
            raise ProviderError(f"{service} audio is over {MAX_AUDIO_BYTES} bytes", retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)
