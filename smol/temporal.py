"""Connecting to Temporal the same way from the API, the worker and the CLI."""

from temporalio.client import Client

from smol.settings import Settings


async def connect(settings: Settings, lazy: bool = False) -> Client:
    """`lazy` connects on first use, so a process can start (and serve what needs no Temporal) while it is down."""
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace, lazy=lazy)
