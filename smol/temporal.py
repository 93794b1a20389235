"""Connecting to Temporal the same way from the API, the worker and the CLI."""

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from smol.settings import Settings


async def connect(settings: Settings, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """`lazy` connects on first use, so a process can start (and serve what needs no Temporal) while it is down."""
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, lazy=lazy, runtime=runtime
    )


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose metrics (the SDK's and the ones workflows and activities record) are served
    for Prometheus at http://<bind_address>/metrics."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the smol search attributes (Keyword) if the namespace does not have them yet."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from workflows.search import ALL

    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in ALL
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
