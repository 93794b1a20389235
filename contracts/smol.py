"""Inputs and results of the workflows, their activities, queries and signals.

Plain dataclasses: fields may be added (with defaults) without breaking running workflows.
"""

from dataclasses import dataclass, field

from contracts.steps import SongStatus


@dataclass
class Payload:
    address: str
    prompt: str
    public: bool = True
    instrumental: bool = False
    playlist: str | None = None
    webhook_url: str | None = None
    song_model: str | None = None  # the song provider to ask first
    song_params: dict | None = None  # e.g. {"duration": 60, "temperature": 1.0}
    title: str | None = None  # the creator's title, used instead of the generated one
    metadata: dict[str, str] | None = None  # the API client's own ids (campaign_id, client_id…): the owner's only


@dataclass
class Lyrics:
    title: str
    lyrics: str
    style: list[str]


@dataclass
class Nsfw:
    safe: bool
    categories: list[str] = field(default_factory=list)


@dataclass
class Song:
    music_id: str
    status: int  # a SongStatus: >= 4 complete, < 0 failed (the song services' convention)
    audio: str | None = None

    @property
    def complete(self) -> bool:
        return self.status >= SongStatus.COMPLETE

    @property
    def failed(self) -> bool:
        return self.status < SongStatus.QUEUED


@dataclass
class SmolInput:
    smol_id: str
    payload: Payload
    seed: int | None = None
    resume: bool = False  # a retry run: start from the steps a previous run saved


@dataclass
class SmolResult:
    smol_id: str
    title: str
    song_ids: list[str]
    public: bool


@dataclass
class StepState:
    name: str
    state: str = "pending"  # pending | running | done | reused | failed
    started_at: str | None = None
    ended_at: str | None = None


@dataclass
class SmolStatus:
    status: str  # queued | running | paused | complete | errored
    current_step: str | None
    steps: list[StepState]
    kv_do: dict
    error: dict | None = None


@dataclass
class PauseSignal:
    reason: str = ""


@dataclass
class ResumeSignal:
    reason: str = ""


# Activity inputs and results, one pair per activity.


@dataclass
class LoadStepsInput:
    smol_id: str


@dataclass
class LoadStepsResult:
    payload: Payload | None = None
    image_key: str | None = None
    description: str | None = None
    lyrics: Lyrics | None = None
    nsfw: Nsfw | None = None
    song_ids: list[str] | None = None
    song_provider: str | None = None
    song_submission: int = 0  # the number to give the next song submission (a failed one is not reused)
    songs: list[Song] = field(default_factory=list)


@dataclass
class SavePayloadInput:
    smol_id: str
    payload: Payload


@dataclass
class SavePayloadResult:
    payload: Payload


@dataclass
class GenerateImageInput:
    smol_id: str
    prompt: str
    seed: int


@dataclass
class GenerateImageResult:
    image_key: str
    provider: str


@dataclass
class DescribeImageInput:
    smol_id: str
    prompt: str
    image_key: str


@dataclass
class DescribeImageResult:
    description: str
    provider: str


@dataclass
class GenerateLyricsInput:
    smol_id: str
    prompt: str
    description: str
    instrumental: bool
    seed: int


@dataclass
class GenerateLyricsResult:
    lyrics: Lyrics
    provider: str


@dataclass
class CheckNsfwInput:
    smol_id: str
    prompt: str
    lyrics: Lyrics


@dataclass
class CheckNsfwResult:
    nsfw: Nsfw
    provider: str


@dataclass
class SubmitSongsInput:
    smol_id: str
    address: str
    prompt: str
    description: str
    lyrics: Lyrics
    instrumental: bool
    image_key: str
    seed: int
    submission: int = 0
    song_model: str | None = None
    song_params: dict | None = None


@dataclass
class SubmitSongsResult:
    song_ids: list[str]
    provider: str


@dataclass
class PollSongsInput:
    smol_id: str
    song_ids: list[str]
    provider: str
    known: list[Song] = field(default_factory=list)  # the songs as the workflow last saw them


@dataclass
class PollSongsResult:
    songs: list[Song]  # different from `known`, or unchanged when the poll window ran out


@dataclass
class ArchiveSongInput:
    smol_id: str
    music_id: str
    variant: int
    provider: str
    audio_url: str | None = None  # where the provider said the finished song is


@dataclass
class ArchiveSongResult:
    music_id: str
    object_key: str


@dataclass
class StoreResultsInput:
    smol_id: str
    payload: Payload
    title: str
    song_ids: list[str]
    public: bool


@dataclass
class StoreResultsResult:
    created: bool


@dataclass
class DiscardSmolInput:
    smol_id: str


@dataclass
class DiscardSmolResult:
    objects_removed: int


@dataclass
class DeliverWebhookInput:
    url: str
    event_id: str
    event: dict


@dataclass
class DeliverWebhookResult:
    status_code: int
    attempt: int
