"""Durable steps: an outage costs no attempt, a step's own failures are counted across attempts (in the heartbeat
details Temporal keeps) and end it at its policy's limit. Unit tests in Temporal's ActivityEnvironment."""

import asyncio
import dataclasses
from datetime import timedelta

import asyncpg
import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.attempts import beat, durable
from smol.outages import is_outage
from workflows.policies import STEP_POLICIES

LIMIT = STEP_POLICIES["generate_image"].maximum_attempts


class Step:
    def __init__(self, error: BaseException | None):
        self.error = error

    @durable
    async def generate_image(self, _data) -> str:
        if self.error:
            raise self.error
        return "drawn"


def environment(failures_before: int | None, attempt: int = 1) -> tuple[ActivityEnvironment, list]:
    env = ActivityEnvironment()
    details = [] if failures_before is None else [failures_before]
    env.info = dataclasses.replace(env.info, activity_type="generate_image", heartbeat_details=details, attempt=attempt)
    beats: list = []
    env.on_heartbeat = lambda *args: beats.append(args)
    return env, beats


async def _raised(env, step) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await env.run(step.generate_image, None)
    return raised.value


OUTAGES = [ConnectionRefusedError(111, "refused"), asyncpg.CannotConnectNowError("starting up"),
           asyncpg.ConnectionDoesNotExistError("closed"), TimeoutError()]  # fmt: skip


@pytest.mark.parametrize("outage", OUTAGES)
async def test_an_outage_costs_no_attempt_however_many_came_before(outage):
    env, beats = environment(failures_before=LIMIT - 1, attempt=500)
    error = await _raised(env, Step(outage))
    assert error.type == "OutageRetry" and not error.non_retryable
    assert error.category == ApplicationErrorCategory.BENIGN
    assert error.next_retry_delay.total_seconds() == 60  # at most a minute apart
    assert beats[-1] == (LIMIT - 1,)  # the count of the step's own failures is kept, not raised


async def test_a_failure_of_the_step_counts_and_stays_retryable_below_the_limit():
    env, beats = environment(failures_before=1)
    error = await _raised(env, Step(ApplicationError("503 from pixellab", type="ProvidersExhausted")))
    assert error.type == "ProvidersExhausted" and not error.non_retryable
    assert beats[-1] == (2,)


async def test_the_last_allowed_failure_is_final_with_its_own_type():
    env, _ = environment(failures_before=LIMIT - 1)
    error = await _raised(env, Step(ValueError("a broken answer")))
    assert error.non_retryable and error.type == "ValueError" and f"failed {LIMIT} times" in error.message


async def test_final_and_benign_errors_pass_through_untouched():
    env, beats = environment(failures_before=0)
    final = ApplicationError("refused", type="ContentPolicy", non_retryable=True)
    assert await _raised(env, Step(final)) is final
    not_ready = ApplicationError("later", type="SongsNotReady", category=ApplicationErrorCategory.BENIGN)
    assert await _raised(env, Step(not_ready)) is not_ready
    assert beats == []


async def test_a_first_attempt_starts_counting_from_zero():
    env, _ = environment(failures_before=None)
    assert await env.run(Step(None).generate_image, None) == "drawn"
    error = await _raised(env, Step(RuntimeError("bug")))
    assert "failed" not in error.message and not error.non_retryable


def test_what_counts_as_an_outage():
    from botocore.exceptions import ClientError, EndpointConnectionError

    assert is_outage(EndpointConnectionError(endpoint_url="http://s3"))
    assert is_outage(ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Put"))
    assert not is_outage(ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                                     "Put"))  # fmt: skip
    assert not is_outage(asyncpg.UniqueViolationError("duplicate"))
    assert not is_outage(ValueError("bad"))


async def test_an_os_error_is_an_outage_only_where_a_service_raised_it(tmp_path):
    import io

    from PIL import Image, UnidentifiedImageError

    from smol.store import FileStore

    with pytest.raises(UnidentifiedImageError) as broken:  # an OSError: a broken answer, not an outage
        Image.open(io.BytesIO(b"\x89PNG\r\n\x1a\n broken"))
    assert not is_outage(broken.value)
    (tmp_path / "full").mkdir()
    with pytest.raises(OSError) as refused:  # the disk refuses (a directory in the way), as a full disk would
        await FileStore(tmp_path).put("full", b"x")
    assert is_outage(refused.value)
    with pytest.raises(OSError) as no_database:  # Postgres not running: its socket is missing
        await asyncpg.connect(f"postgresql://nobody@/none?host={tmp_path}/no-socket-here", timeout=2)
    assert is_outage(no_database.value)


SCRIPT: list = []  # what each attempt of the scripted step does, in turn


@activity.defn(name="scripted_step")
async def scripted_step(_: str) -> str:
    @durable
    async def run(self, data):
        for _ in range(3):  # heartbeats throttled by the SDK, as a long provider call sends them
            beat()
            await asyncio.sleep(0.05)
        outcome = SCRIPT.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return await run(None, _)


@workflow.defn(name="ScriptedDurableStep", sandboxed=False)
class ScriptedDurableStep:
    @workflow.run
    async def run(self) -> str:
        options = dataclasses.replace(STEP_POLICIES["scripted_step"], initial_interval=timedelta(milliseconds=100))
        return await workflow.execute_activity(scripted_step, "x", **options.activity_options())


@pytest.mark.slow
async def test_the_count_survives_attempts_on_a_real_server(temporal, task_queue, monkeypatch):
    """On the dev server: outages between failures do not reset or raise the count; the third failure is final."""
    monkeypatch.setitem(STEP_POLICIES, "scripted_step", dataclasses.replace(STEP_POLICIES["store_results"],
                                                                            maximum_attempts=3))  # fmt: skip
    SCRIPT[:] = [ConnectionRefusedError(111, "refused"), ValueError("1st"), asyncpg.CannotConnectNowError("starting"),
                 ValueError("2nd"), ValueError("3rd"), "never reached"]  # fmt: skip
    async with Worker(temporal, task_queue=task_queue, workflows=[ScriptedDurableStep], activities=[scripted_step]):
        handle = await temporal.start_workflow(ScriptedDurableStep.run, id=f"scripted-{task_queue}",
                                               task_queue=task_queue)  # fmt: skip
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause.cause
    assert cause.type == "ValueError" and cause.non_retryable
    assert "3rd" in cause.message and "failed 3 times" in cause.message
    assert SCRIPT == ["never reached"]
