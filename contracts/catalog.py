"""Inputs and results of the SoundFlow catalog workflows (CatalogDayWorkflow, PremiumTrackWorkflow) and their
activities. Audio never travels through Temporal: activities store it and pass object keys."""

import re
from dataclasses import dataclass, field

# The site categories, in the catalogs' order: name -> slug
CATEGORIES: dict[str, str] = {
    "Deep Work": "deep-work", "Study": "study", "Relax": "relax", "Nature": "nature", "Flow State": "flow-state",
}  # fmt: skip
SLUGS = {slug: name for name, slug in CATEGORIES.items()}
TRACK_ID_PATTERN = r"^[a-z0-9][a-z0-9_]{0,63}$"
ENTRY_ID_PATTERN = r"^(free|premium)-\d{4}-\d{2}-\d{2}-[a-z0-9][a-z0-9_]{0,63}$"
PREMIUM_MODELS = ("musicgen-stereo-large", "musicgen-stereo-medium")
LAYERS = ("drums", "bass", "music", "pad")


@dataclass
class TrackSpec:
    """One track of the plan, for one day: what the renderer honours and the catalog entry repeats."""

    id: str
    category: str
    genre: str
    bpm: int
    key: str
    layers: dict[str, int]
    goal_tags: list[str]
    nature_tags: list[str]
    energy_min: int
    energy_max: int
    ambience_min: int
    ambience_max: int
    seconds: int = 180


@dataclass
class CatalogDayInput:
    date: str | None = None  # YYYY-MM-DD; None: the day the schedule fired for (else today, UTC)
    seconds: int | None = None  # track length; None: the plan's


@dataclass
class PlanDayInput:
    date: str
    seconds: int | None = None


@dataclass
class PlanDayResult:
    tracks: list[TrackSpec]


@dataclass
class RenderTrackInput:
    date: str
    spec: TrackSpec
    tier: str = "free"


@dataclass
class RenderTrackResult:
    entry_id: str
    object_key: str
    rendered: bool  # False when the track was in the catalog already (a second run of the day makes nothing new)
    seconds: float = 0.0  # time spent rendering and encoding


@dataclass
class RebuildCatalogsInput:
    reason: str = ""


@dataclass
class RebuildCatalogsResult:
    entries: int
    free: int
    premium: int


@dataclass
class ValidateCatalogsInput:
    decode_dates: list[str] | None = None  # decode the audio of these dates; None: of every entry


@dataclass
class ValidateCatalogsResult:
    entries: int
    decoded: int
    problems: list[str] = field(default_factory=list)


@dataclass
class CatalogDayResult:
    date: str
    tracks: list[RenderTrackResult]
    entries: int
    problems: list[str] = field(default_factory=list)


@dataclass
class PremiumTrackInput:
    category: str  # name or slug
    track_id: str
    duration: int = 180
    model: str = "musicgen-stereo-large"
    date: str | None = None  # None: today (UTC)


@dataclass
class MakePremiumInput:
    date: str
    spec: TrackSpec
    model: str


@dataclass
class PremiumTrackResult:
    entry_id: str
    object_key: str
    provider: str
    rendered: bool = True
    problems: list[str] = field(default_factory=list)


def category_name(category: str) -> str | None:
    """The category's name from its name or slug (any case); None if unknown."""
    wanted = category.strip().lower()
    for name, slug in CATEGORIES.items():
        if wanted in (name.lower(), slug):
            return name
    return None


def premium_input(category: str, track_id: str, duration: int, model: str, date: str) -> PremiumTrackInput:
    """A premium request checked (ValueError saying what is wrong)."""
    name = category_name(category)
    if name is None:
        raise ValueError(f"unknown category {category!r}; one of: {', '.join(CATEGORIES)} (or their slugs)")
    if not re.fullmatch(TRACK_ID_PATTERN, track_id):
        raise ValueError("track_id must be 1–64 lowercase letters, digits and _ (not starting with _)")
    if model not in PREMIUM_MODELS:
        raise ValueError(f"model must be one of {', '.join(PREMIUM_MODELS)}")
    if not 5 <= duration <= 600:
        raise ValueError("duration must be 5 to 600 seconds")
    return PremiumTrackInput(name, track_id, duration, model, date)
