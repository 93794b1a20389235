"""Fakes of the pipeline's and the mint's activities, registered under the real activity names: for tests of the
orchestration alone (tests/test_workflow_fast.py) and for recording replay fixtures (tests/test_replay.py)."""

import asyncio
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.mint import CheckedMint, ConfirmedMint, RecordedMint, SentMint, SignedMint
from contracts.search import AnalyzeSmolResult, IndexSmolResult
from contracts.smol import (
    ArchiveSongResult,
    CheckNsfwResult,
    DeliverWebhookResult,
    DescribeImageResult,
    DiscardSmolResult,
    GenerateImageResult,
    GenerateLyricsResult,
    LoadStepsResult,
    Lyrics,
    Nsfw,
    Payload,
    PollSongsResult,
    SavePayloadResult,
    Song,
    StoreResultsResult,
    SubmitSongsResult,
)

LYRICS = Lyrics(title="Frog Night", lyrics="[Verse]\nribbit", style=["house", "night"])


@dataclass
class FakePipeline:
    """The pipeline's activities, recording what was called; `songs` is what each poll answers in turn. (Their
    inputs arrive as plain JSON objects: the fakes carry no type hints.)"""

    saved: LoadStepsResult = field(default_factory=LoadStepsResult)
    songs: list[list[Song]] = field(default_factory=lambda: [[Song("m1", 4, "u1"), Song("m2", 4, "u2")]])
    calls: list[str] = field(default_factory=list)
    image_started: asyncio.Event = field(default_factory=asyncio.Event)
    image_gate: asyncio.Event | None = None

    def activities(self) -> list:
        def fake(name: str, answer):
            @activity.defn(name=name)
            async def run(data):
                self.calls.append(name)
                return await answer(data) if asyncio.iscoroutinefunction(answer) else answer(data)

            return run

        async def image(_):
            self.image_started.set()
            if self.image_gate is not None:
                await self.image_gate.wait()
            return GenerateImageResult("k.png", "fake")

        return [
            fake("load_steps", lambda _: self.saved),
            fake("save_payload", lambda data: SavePayloadResult(Payload(**data["payload"]))),
            fake("generate_image", image),
            fake("describe_image", lambda _: DescribeImageResult("a green frog", "fake")),
            fake("generate_lyrics", lambda _: GenerateLyricsResult(LYRICS, "fake")),
            fake("check_nsfw", lambda _: CheckNsfwResult(Nsfw(True), "fake")),
            fake("submit_songs", lambda _: SubmitSongsResult(["m1", "m2"], "fake")),
            fake("poll_songs", lambda _: PollSongsResult(self.songs.pop(0) if len(self.songs) > 1 else self.songs[0])),
            fake("archive_song", lambda data: ArchiveSongResult(data["music_id"], f"{data['music_id']}.mp3")),
            fake("store_results", lambda _: StoreResultsResult(True)),
            fake("discard_smol", lambda _: DiscardSmolResult(0)),
            fake("deliver_webhook", lambda _: DeliverWebhookResult(200, 1)),
            fake("analyze_smol", lambda _: AnalyzeSmolResult()),
            fake("index_smol", lambda _: IndexSmolResult(indexed=True)),
        ]



def mint_activities(sent: list[str], confirmed: list[str], refuse_check: bool = False) -> list:
    calls: list[str] = []

    @activity.defn(name="check_mint")
    async def check(_):
        calls.append("check")
        if refuse_check:
            raise ApplicationError("the transaction does not call the smol contract", type="InvalidMint",
                                   non_retryable=True)  # fmt: skip
        return CheckedMint(["a" * 64])

    @activity.defn(name="sign_mint")
    async def sign(_):
        calls.append("sign")
        return SignedMint(f"tx{len([c for c in calls if c == 'sign'])}", 100)

    @activity.defn(name="submit_mint")
    async def submit(_):
        calls.append("submit")
        return SentMint(sent.pop(0))

    @activity.defn(name="confirm_mint")
    async def confirm(_):
        calls.append("confirm")
        return ConfirmedMint(confirmed.pop(0), "AAAA", "txFAILED" if confirmed == ["FAILED"] else "")

    @activity.defn(name="record_mint")
    async def record(data):
        calls.append("record")
        return RecordedMint({"a" * 64: ["CTOKEN", "CAMM"]})

    @activity.defn(name="fail_mint")
    async def fail(_):
        calls.append("fail")
        return None

    return [check, sign, submit, confirm, record, fail], calls
