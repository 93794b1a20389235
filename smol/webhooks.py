"""Signed webhook events: where they may go, and how receivers verify them.

A request carries `Smol-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` and `Smol-Event-Id`
(the same for every retry of one event, so receivers can drop duplicates).
"""

import asyncio
import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

from smol.errors import InvalidInput

SIGNATURE_HEADER = "Smol-Signature"
EVENT_ID_HEADER = "Smol-Event-Id"
MAX_URL = 2000


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does: check the signature and that it is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def check_destination(url: str, allow_private: bool) -> str:
    """The URL if it is http(s) and every address its host resolves to is public (unless private ones are allowed)."""
    if len(url) > MAX_URL:
        raise InvalidInput("webhook_url is too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise InvalidInput("webhook_url must be an http(s) URL without credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port)
    except (OSError, ValueError):
        raise InvalidInput(f"webhook_url host {parts.hostname!r} does not resolve") from None
    if not allow_private and not all(_is_public(info[4][0]) for info in found):
        raise InvalidInput("webhook_url must not point at a loopback or private address")
    return url
