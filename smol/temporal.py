"""Connecting to Temporal the same way from the API, the worker and the CLI."""

from temporalio.client import Client

from smol.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
