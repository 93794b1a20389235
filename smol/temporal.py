"""Connecting to Temporal the same way from the API, the worker and the CLI."""

import dataclasses

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from contracts.search_attributes import ALL
from smol.codec import codec_from
from smol.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """Payloads encrypted by the codec; failure messages and stack traces moved into an (encrypted) payload too,
    since an error can quote a prompt. Search attributes are not payloads: they stay plain."""
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=codec_from(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """`lazy` connects on first use, so a process can start (and serve what needs no Temporal) while it is down.
    Workers made from this client encode with its data converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        lazy=lazy,
        runtime=runtime,
        data_converter=data_converter(settings),
    )


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose metrics (the SDK's and the ones workflows and activities record) are served
    for Prometheus at http://<bind_address>/metrics."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the smol search attributes (Keyword) if the namespace does not have them yet."""
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
