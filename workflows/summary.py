"""What the Temporal Web UI shows for a run in its list (the static summary). Never a prompt: even a smol asked for
in public may be flagged unsafe and become private later in the run."""

from contracts.smol import Payload

MAX_SUMMARY = 120


def start_summary(payload: Payload, title: str | None = None) -> str:
    """The title when known (a retry run), else who asked for it and how."""
    if title:
        text = " ".join(title.split())
        return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"
    address = payload.address if len(payload.address) <= 12 else f"{payload.address[:4]}…{payload.address[-4:]}"
    kind = "instrumental" if payload.instrumental else "song"
    return f"new {kind} smol by {address}" + ("" if payload.public else " (private)")
