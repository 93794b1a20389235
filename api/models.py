"""Request bodies and response shapes, with the field names of the original wire contract."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from smol.validation import MAX_PLAYLIST, MAX_PROMPT, check_shown_text


class SongParams(BaseModel):
    """Parameters for the song model; each provider uses the ones it understands."""

    model_config = ConfigDict(extra="forbid")

    duration: int | None = Field(default=None, ge=5, le=180, description="seconds")
    temperature: float | None = Field(default=None, gt=0, le=2)
    top_k: int | None = Field(default=None, ge=1, le=1000)
    top_p: float | None = Field(default=None, ge=0, le=1)
    classifier_free_guidance: float | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data):
        """JSON numbers only (62.0 is an integer too); pydantic would take `false` or "7" as numbers."""
        if isinstance(data, dict) and any(isinstance(value, bool | str) for value in data.values()):
            raise ValueError("song_params values must be numbers")
        return data


METADATA_KEY_PATTERN = "^[A-Za-z0-9_.-]{1,40}$"
MAX_METADATA_KEYS, MAX_METADATA_VALUE, MAX_TITLE = 20, 500, 200
MetadataKey = Annotated[str, StringConstraints(pattern=METADATA_KEY_PATTERN)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE)]


class CreateSmol(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, description="at most 380 characters when instrumental")
    public: bool = Field(default=True, strict=True)  # strict: 0 or "no" is not a boolean
    instrumental: bool = Field(default=False, strict=True)
    playlist: str | None = Field(default=None, min_length=1, max_length=MAX_PLAYLIST)
    song_model: str | None = Field(default=None, max_length=64, description="a configured song provider to ask first")
    song_params: SongParams | None = None
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="POSTed a signed JSON event when the smol completes or fails"
    )
    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE, pattern=r"\S",
                              description="used instead of the generated title")  # fmt: skip
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, max_length=MAX_METADATA_KEYS,
        description="your own ids (e.g. campaign_id, client_id): at most 20 keys of letters, digits, `_.-` (≤ 40), "
        "string values ≤ 500 characters; shown only to you, and filterable in GET /created",
    )  # fmt: skip

    @field_validator("title")
    @classmethod
    def _printable_title(cls, title: str | None) -> str | None:
        return check_shown_text(title).strip() if title is not None else None

    @field_validator("metadata")
    @classmethod
    def _storable_values(cls, metadata: dict | None) -> dict | None:
        if metadata is not None and any("\x00" in value for value in metadata.values()):
            raise ValueError("metadata values must not contain NUL characters")
        return metadata


class Pagination(BaseModel):
    nextCursor: str | None
    hasMore: bool


class SmolListItem(BaseModel):
    Id: str
    Title: str
    Song_1: str
    Mint_Token: str | None
    Mint_Amm: str | None
    Created_At: str


class SmolList(BaseModel):
    smols: list[SmolListItem]
    pagination: Pagination


class CreatedSmol(SmolListItem):
    Status: str = Field(description="complete, running (queued and paused too) or failed")
    Metadata: dict[str, str] | None = Field(default=None, description="the metadata it was created with")


class CreatedList(BaseModel):
    smols: list[CreatedSmol]
    pagination: Pagination


class Progress(BaseModel):
    """Estimated from the recent durations of each step with the providers in use."""

    percent: int = Field(ge=0, le=100)
    eta_seconds: float | None = Field(description="seconds until it is done; null while paused")
    step: str | None = Field(description="the step running now")


class SmolRow(BaseModel):
    Id: str
    Title: str
    Song_1: str
    Song_2: str
    Created_At: str
    Public: int
    Instrumental: int
    Plays: int
    Views: int
    Address: str
    Mint_Token: str | None
    Mint_Amm: str | None


class WorkflowError(BaseModel):
    name: str
    message: str


class WorkflowState(BaseModel):
    status: str = Field(description="queued, running, paused, errored, terminated, complete, waiting or unknown")
    error: WorkflowError | None = None
    current_step: str | None = None
    steps: list[dict] = Field(default_factory=list)


class MintProgress(BaseModel):
    """The smol's newest mint: queued, checking, signing, signed, submitting, confirming, minted or failed."""

    id: str
    status: str
    tx_hash: str | None = None
    error: str | None = None


class SmolDetail(BaseModel):
    """`d1` when the smol is finished; `wf` while it is in progress or after it failed; `mint` (an addition of
    ours) once a mint was asked for. While a smol asked for in private, or flagged unsafe, is being made, others get
    only its progress: `{"kv_do": {"image": bool}, "wf": {"status": ...}, "liked": false}`. `kv_do.songs[].audio` is
    an absolute URL."""

    kv_do: dict
    d1: SmolRow | None = None
    wf: WorkflowState | None = None
    liked: bool
    mint: MintProgress | None = None
    progress: Progress | None = Field(default=None, description="while it is being made")
    paid_calls: dict[str, int] | None = Field(
        default=None, description="owner only: calls each provider may have charged for, over every run"
    )
