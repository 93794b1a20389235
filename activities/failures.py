"""Our errors become Temporal's in one place: every worker of ours runs its activities through this interceptor, which
turns a `SmolError` into the ApplicationError its class describes (type, retryability, delay; smol/errors.py)."""

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from smol.errors import SmolError, to_temporal


class _ToTemporal(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput):
        try:
            return await self.next.execute_activity(input)
        except SmolError as exc:
            raise to_temporal(exc) from exc


class SmolErrors(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ToTemporal(next)


def smol_worker(client, *, task_queue: str, workflows: list, activities: list, **options) -> Worker:
    """A worker of ours (the worker process, tests, benchmarks): our errors reach Temporal as they are meant to."""
    return Worker(client, task_queue=task_queue, workflows=workflows, activities=activities,
                  interceptors=[SmolErrors()], **options)  # fmt: skip
