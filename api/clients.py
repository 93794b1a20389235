"""Who a client is, for per-client limits and counts: its address (behind a proxy, the one it sends in
X-Forwarded-For when uvicorn trusts it), with an IPv6 address taken as its /64: one subscriber or host usually holds a
whole /64, so counting single addresses would let it pose as 2**64 clients. (Many hold a /56 or a /48: where that
matters, `client_of(request, 48)` counts those too.)"""

import ipaddress

from fastapi import Request


def client_of(request: Request, ipv6_prefix: int = 64) -> str:
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host  # (not an address: a test client's name, a Unix socket)
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False))
    return str(address)
