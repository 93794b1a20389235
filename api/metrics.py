"""Prometheus metrics of the API: requests by route template and status, their latency, smols started."""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

REGISTRY = CollectorRegistry()
REQUESTS = Counter("smol_api_requests", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("smol_api_request_seconds", "Time to answer an HTTP request", ["method", "route"],
                    registry=REGISTRY)  # fmt: skip
SMOLS_STARTED = Counter("smol_api_smols_started", "Smols started through POST /", registry=REGISTRY)
WORKFLOW_VIEWS = Counter("smol_api_workflow_views", "Workflow describes + status queries for in-progress smols",
                         registry=REGISTRY)  # fmt: skip
RATE_LIMITED = Counter("smol_api_rate_limited", "Creations refused by the per-address limit", registry=REGISTRY)


class MetricsMiddleware:
    """Pure ASGI, so streaming responses (SSE) are timed to their first byte without being buffered."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = getattr(scope.get("route"), "path", "unmatched")
                LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
                REQUESTS.labels(scope["method"], route, str(status)).inc()
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
