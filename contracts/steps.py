"""The names of SmolWorkflow's steps and of a song's states, shared by the workflow, its policy table, the activities'
records (`provider_calls.step`, `smol_steps`) and the API."""

from enum import IntEnum, StrEnum


class Step(StrEnum):
    """SmolWorkflow's steps in order (their names in the status query and in `provider_calls.step`)."""

    LOAD = "load"
    PAYLOAD = "payload"
    IMAGE = "image"
    DESCRIPTION = "description"
    LYRICS = "lyrics"
    NSFW = "nsfw"
    SUBMIT = "submit"  # submitting the two songs (saved in `smol_steps` as `song_ids`)
    POLL = "poll"
    ARCHIVE = "archive"
    STORE = "store"


class SongStatus(IntEnum):
    """A song's state, in the song services' convention: 0–3 on the way, 4 done, below 0 failed."""

    QUEUED = 0
    SUBMITTED = 1
    GENERATING = 2
    STREAMING = 3
    COMPLETE = 4
    REFUSED = -1  # by the content policy
    TIMED_OUT = -2  # at the provider
    UNAVAILABLE = -3  # the provider


FAILURES = {SongStatus.REFUSED: "refused by the content policy", SongStatus.TIMED_OUT: "timed out at the provider",
            SongStatus.UNAVAILABLE: "provider unavailable"}  # fmt: skip


def failure_reason(status: int) -> str:
    return FAILURES.get(status, "failed")
