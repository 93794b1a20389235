"""Connecting to Temporal the same way from the API, the worker and the CLI."""

import dataclasses
import logging
import uuid
from contextlib import contextmanager
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from contracts.search_attributes import ALL
from smol.codec import codec_from
from smol.errors import ServiceUnavailable, StartUncertain
from smol.settings import Settings

log = logging.getLogger(__name__)


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


RPC_TIMEOUT = timedelta(seconds=10)
QUERY_TIMEOUT = timedelta(seconds=5)
START_TOKEN = "start"  # memo key: which start request made the run


def temporal_down(exc: BaseException) -> bool:
    """Whether `exc` says the Temporal service could not be reached (a lazy client reports a server it cannot
    connect to as RuntimeError("Failed client connect: ...")), as opposed to a bug or an answer."""
    if isinstance(exc, RPCError):
        return exc.status != RPCStatusCode.NOT_FOUND
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


@contextmanager
def unavailable_if_down(message: str = "the workflow service is unavailable"):
    """Inside it, Temporal unreachable or refusing (any RPC error the code inside did not handle) becomes
    ServiceUnavailable, the API's 503; anything else goes on as it is. The one place that decides it."""
    try:
        yield
    except RPCError:
        raise ServiceUnavailable(message) from None
    except RuntimeError as exc:
        if not temporal_down(exc):
            raise
        raise ServiceUnavailable(message) from None


async def start_workflow(client: Client, run, arg, *, id: str, settings: Settings, summary: str | None = None,
                         search_attributes: TypedSearchAttributes | None = None, **options):
    """Start a workflow of ours on the task queue; ServiceUnavailable (nothing started) if Temporal is away,
    StartUncertain if it stopped answering midway.
    WorkflowAlreadyStartedError goes to the caller, which knows what it means. A start whose answer was lost (a
    timeout after the server started it) is asked about once: if the id's latest run carries this start's token (in
    its memo: a retry reuses an id), it started."""
    token, answer_lost = uuid.uuid4().hex, False
    try:
        with unavailable_if_down("the workflow service is unavailable; nothing was started, try again"):
            try:
                return await client.start_workflow(run, arg, id=id, task_queue=settings.task_queue,
                                                   rpc_timeout=RPC_TIMEOUT, static_summary=summary,
                                                   search_attributes=search_attributes, memo={START_TOKEN: token},
                                                   **options)  # fmt: skip
            except RPCError as exc:
                # (asked, not answered in time: the SDK's rpc_timeout ends the call as CANCELLED, "Timeout expired")
                answer_lost = exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
                raise
    except ServiceUnavailable:
        try:
            latest = await describe(client, id)
            started = latest is not None and await latest.memo_value(START_TOKEN, None) == token
        except ServiceUnavailable:
            if answer_lost:
                raise StartUncertain("the workflow service stopped answering while starting the run: it may have "
                                     "started (GET /created lists it if so)") from None  # fmt: skip
            started = False
        if not started:
            raise
        log.warning("workflow %s: the answer to its start was lost, but it started", id)
        return client.get_workflow_handle(id)


async def describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The workflow's latest run as Temporal describes it; None if there is none; ServiceUnavailable if Temporal
    is away."""
    with unavailable_if_down():
        try:
            return await client.get_workflow_handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise


def is_running(description: WorkflowExecutionDescription | None) -> bool:
    return description is not None and description.status == WorkflowExecutionStatus.RUNNING
