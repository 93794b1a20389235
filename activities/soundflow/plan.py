"""The daily plan (daily_plan.yaml, or SMOL_CATALOG_PLAN): loaded and checked, with an error that says where."""

import datetime as dt
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from activities.soundflow.render import GENRES, KEY_PATTERN
from contracts.catalog import CATEGORIES, LAYERS, TRACK_ID_PATTERN, TrackSpec

DEFAULT_PLAN = Path(__file__).with_name("daily_plan.yaml")
Level = Annotated[int, Field(ge=0, le=100)]


class PlanError(ValueError):
    """The plan cannot be used; the message names the file and every problem in it."""


def _range(value: list[int]) -> list[int]:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError("must be [lowest, highest] with lowest <= highest")
    return value


class PlanTrack(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(pattern=TRACK_ID_PATTERN)
    siteCategory: str
    slug: str
    genres: list[str] = Field(min_length=1)
    bpm: int = Field(ge=40, le=220)
    key: str = Field(pattern=KEY_PATTERN.pattern)
    layers: dict[str, Level]
    goalTags: list[str]
    natureTags: list[str]
    energy: list[Level]
    ambience: list[Level]

    _ranges = field_validator("energy", "ambience")(_range)

    @field_validator("genres")
    @classmethod
    def _known_genres(cls, genres: list[str]) -> list[str]:
        unknown = [genre for genre in genres if genre not in GENRES]
        if unknown:
            raise ValueError(f"unknown genre(s) {', '.join(unknown)}; known: {', '.join(GENRES)}")
        return genres

    @field_validator("layers")
    @classmethod
    def _all_layers(cls, layers: dict[str, int]) -> dict[str, int]:
        if set(layers) != set(LAYERS):
            raise ValueError(f"must give exactly the layers {', '.join(LAYERS)}")
        return layers

    @model_validator(mode="after")
    def _category(self) -> "PlanTrack":
        if CATEGORIES.get(self.siteCategory) != self.slug:
            known = ", ".join(f"{name} ({slug})" for name, slug in CATEGORIES.items())
            raise ValueError(f"siteCategory {self.siteCategory!r} with slug {self.slug!r} is not one of: {known}")
        return self


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seconds: int = Field(default=180, ge=5, le=600)
    tracks: list[PlanTrack]

    @model_validator(mode="after")
    def _one_per_category(self) -> "Plan":
        categories = [track.siteCategory for track in self.tracks]
        if sorted(categories) != sorted(CATEGORIES):
            raise ValueError(f"needs exactly one track per category ({', '.join(CATEGORIES)}); has: "
                             f"{', '.join(categories) or 'none'}")  # fmt: skip
        ids = [track.id for track in self.tracks]
        if len(set(ids)) != len(ids):
            raise ValueError("track ids must be unique")
        return self

    def day(self, date: str, seconds: int | None = None) -> list[TrackSpec]:
        """The tracks of one day, in category order, each with that weekday's genre."""
        weekday = dt.date.fromisoformat(date).weekday()
        order = list(CATEGORIES)
        tracks = sorted(self.tracks, key=lambda track: order.index(track.siteCategory))
        return [
            TrackSpec(
                id=t.id, category=t.siteCategory, genre=t.genres[weekday % len(t.genres)], bpm=t.bpm, key=t.key,
                layers=dict(t.layers), goal_tags=list(t.goalTags), nature_tags=list(t.natureTags),
                energy_min=t.energy[0], energy_max=t.energy[1], ambience_min=t.ambience[0],
                ambience_max=t.ambience[1], seconds=seconds or self.seconds,
            )  # fmt: skip
            for t in tracks
        ]


def parse_plan(text: str, source: str = "plan") -> Plan:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{source}: must be a mapping with `tracks`")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "plan"
            problems.append(f"  {where}: {error['msg'].removeprefix('Value error, ')}")
        raise PlanError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems)) from None


def load_plan(path: Path | str | None = None) -> Plan:
    path = Path(path) if path else DEFAULT_PLAN
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_plan(text, str(path))
