"""Custom search attributes that make smols findable in the Temporal UI and with `smol list`."""

from temporalio.common import SearchAttributeKey

SMOL_ADDRESS = SearchAttributeKey.for_keyword("SmolAddress")
SMOL_STEP = SearchAttributeKey.for_keyword("SmolStep")
SMOL_STATUS = SearchAttributeKey.for_keyword("SmolStatus")
ALL = [SMOL_ADDRESS, SMOL_STEP, SMOL_STATUS]

# A run that was terminated or timed out never updates its own SmolStatus again: what a run really is combines it with
# Temporal's ExecutionStatus. These are the visibility queries for each smol status (`smol list --status`, the UI).
LIVE = "ExecutionStatus = 'Running'"
STATUS_QUERIES = {
    "queued": f"SmolStatus = 'queued' AND {LIVE}",
    "running": f"SmolStatus = 'running' AND {LIVE}",
    "paused": f"SmolStatus = 'paused' AND {LIVE}",
    "complete": "ExecutionStatus = 'Completed'",
    "errored": "ExecutionStatus IN ('Failed', 'TimedOut')",
    "terminated": "ExecutionStatus IN ('Terminated', 'Canceled')",
}
CLOSED_AS = {"Completed": "complete", "Failed": "errored", "TimedOut": "errored", "Terminated": "terminated",
             "Canceled": "terminated", "ContinuedAsNew": "complete"}  # fmt: skip


def true_status(smol_status: str | None, execution_status: str) -> str:
    """The status to show for a run: its own while it runs, Temporal's once it is closed."""
    if execution_status == "Running":
        return smol_status or "queued"
    return CLOSED_AS.get(execution_status, execution_status.lower())
