"""Signed webhook events: where they may go, and how receivers verify them.

A request carries `Smol-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` and `Smol-Event-Id`
(the same for every retry of one event, so receivers can drop duplicates).
"""

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from smol.errors import InvalidInput, ServiceUnavailable, TooManyRequests

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


# IPv6 forms that carry an IPv4 address in their last 32 bits: IPv4-compatible, IPv4-mapped, IPv4-translated, NAT64
_CARRY_LAST_32 = [ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")]
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


class Unresolvable(InvalidInput):
    """The host name has no address (perhaps for now)."""


def _carried_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches through (embedded, 6to4, Teredo server and client)."""
    if any(ip in net for net in _CARRY_LAST_32):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)
    return []


def is_public(address: str) -> bool:
    """Whether an address is a public unicast one; an IPv6 form that carries IPv4 addresses is judged by those."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 4:
        return ip.is_global and not ip.is_multicast
    if carried := _carried_v4(ip):
        return all(is_public(str(v4)) for v4 in carried)
    # only global unicast space: refuses site-local, unique-local, link-local, multicast, NAT64 local-use, ...
    return ip in _GLOBAL_UNICAST and ip.is_global


def _target(url: str) -> httpx.URL:
    if len(url) > MAX_URL:
        raise InvalidInput("webhook_url is too long")
    try:
        target = httpx.URL(url)
        target.host  # noqa: B018 (decodes an IDNA host: a malformed "xn--" label fails here)
    except (httpx.InvalidURL, UnicodeError):
        raise InvalidInput("webhook_url is not a valid URL") from None
    if target.scheme not in ("http", "https") or not target.host or target.userinfo:
        raise InvalidInput("webhook_url must be an http(s) URL without credentials")
    if not 0 < (target.port or 1) < 65536:
        raise InvalidInput("webhook_url has an invalid port")
    return target


# Webhook hosts are looked up on threads of their own, and given up on after RESOLVE_SECONDS: a name whose DNS server
# answers slowly (anyone may own one) cannot hold the threads every other lookup and file operation of the process use.
# When all of them are still busy (lookups given up on keep their thread until the resolver answers), a new one is
# 503: the caller's name was never looked up, so it is not told that it does not resolve.
RESOLVE_SECONDS = 5
RESOLVERS = 16  # threads for lookups in a process (a thread waiting on DNS costs little)
SLOW_HOST_SECONDS = 60  # a host that did not resolve in time is refused at once for this long
RESPONSE_BYTES = 4096  # of a receiver's answer read (only its status is used)
_RESOLVER = ThreadPoolExecutor(max_workers=RESOLVERS, thread_name_prefix="webhook-dns")
_resolving = [0]  # lookups running on those threads
_callers_resolving: set[str] = set()  # callers with a lookup running (on its thread, given up on or not)
_slow_hosts: dict[str, float] = {}  # host -> until when it is refused at once


async def _lookup(host: str, port: int, caller: str | None) -> list:
    if _resolving[0] >= RESOLVERS:
        raise ServiceUnavailable("webhook host names cannot be looked up at the moment; try again shortly")
    if caller is not None:
        if caller in _callers_resolving:
            raise TooManyRequests("a webhook host of yours is being looked up already; try again shortly",
                                  RESOLVE_SECONDS)  # fmt: skip
        _callers_resolving.add(caller)
    _resolving[0] += 1

    def ended(_) -> None:
        _resolving[0] -= 1
        _callers_resolving.discard(caller)

    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    running = asyncio.get_running_loop().run_in_executor(_RESOLVER, lookup)
    running.add_done_callback(ended)
    return await asyncio.shield(running)  # (given up on: it still holds its thread until it ends, and is counted)


async def resolve_destination(url: str, allow_private: bool, caller: str | None = None) -> tuple[httpx.URL, str]:
    """The parsed URL and the address to connect to, once every address its host resolves to was checked. A
    `caller` (an API client) has one lookup at a time, counted until its thread ends: names that never answer tie
    up one thread per caller, not the process's."""
    target = _target(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    host = target.raw_host.decode()
    if _slow_hosts.get(host, 0) > time.monotonic():
        raise Unresolvable(f"webhook_url host {target.host!r} did not resolve in time a moment ago; try another")
    try:
        found = await asyncio.wait_for(_lookup(host, port, caller), RESOLVE_SECONDS)
    except TimeoutError:  # (before OSError, which it is)
        if len(_slow_hosts) >= 4096:
            _slow_hosts.clear()
        _slow_hosts[host] = time.monotonic() + SLOW_HOST_SECONDS
        raise Unresolvable(f"webhook_url host {target.host!r} did not resolve within {RESOLVE_SECONDS} s") from None
    except (OSError, UnicodeError):
        raise Unresolvable(f"webhook_url host {target.host!r} does not resolve") from None
    addresses = [info[4][0].split("%", 1)[0] for info in found]
    if not addresses:
        raise Unresolvable(f"webhook_url host {target.host!r} does not resolve")
    if not allow_private and not all(is_public(address) for address in addresses):
        raise InvalidInput("webhook_url must not point at a loopback or private address")
    return target, addresses[0]


async def check_destination(url: str, allow_private: bool, caller: str | None = None) -> str:
    """The URL if it is http(s) and every address its host resolves to is public (unless private ones are allowed)."""
    await resolve_destination(url, allow_private, caller)
    return url


async def deliver(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, timeout: float = 10,
                  verify: ssl.SSLContext | bool = True,
                  transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:  # fmt: skip
    """POST to the address that was checked: the host is resolved once, and the connection goes to that IP while
    `Host`, TLS SNI and the certificate check keep the host name (no second lookup to rebind). No redirects. The
    receiver's answer is read up to RESPONSE_BYTES, and the whole exchange ends within 2 × `timeout` (a receiver
    dripping an endless answer would hold the worker otherwise); past that, httpx.TimeoutException."""
    target, address = await resolve_destination(url, allow_private)
    try:
        pinned = target.copy_with(host=address)
    except httpx.InvalidURL:
        raise InvalidInput(f"webhook_url host resolves to an address we cannot connect to: {address}") from None
    # trust_env off: a proxy from the environment would resolve the name again
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, verify=verify,
                                 transport=transport) as client:  # fmt: skip
        try:
            async with asyncio.timeout(2 * timeout), client.stream(
                "POST", pinned, content=body, headers={**headers, "Host": target.netloc.decode()},
                extensions={"sni_hostname": target.raw_host.decode()},
            ) as response:  # fmt: skip
                await _read_some(response)
                return response
        except TimeoutError:
            raise httpx.TimeoutException(f"the webhook receiver took over {2 * timeout:g} s in all") from None


async def _read_some(response: httpx.Response) -> None:
    read = 0
    try:
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= RESPONSE_BYTES:
                break
    except httpx.StreamConsumed:
        pass  # (an answer already read whole: a test transport's)
