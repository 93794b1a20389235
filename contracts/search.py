"""Inputs and results of the search indexing activities and the backfill workflow."""

from dataclasses import dataclass, field


@dataclass
class SongFeatures:
    """What one song sounds like (activities/analysis.py `audio_features`)."""

    music_id: str
    tempo: float  # beats per minute, 0 when no beat was found
    key: str  # "C" .. "B"
    mode: str  # "major" | "minor"
    loudness: float  # dBFS
    energy: float  # RMS, 0..1
    brightness: float  # spectral centroid, Hz
    chroma: list[float]  # 12 pitch classes from C, summing to 1
    timbre: list[float]  # mean MFCCs 1..14
    seconds: float  # how much of the song was analysed


@dataclass
class AnalyzeSmolInput:
    smol_id: str


@dataclass
class AnalyzeSmolResult:
    songs: list[SongFeatures] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)  # music ids whose audio could not be decoded


@dataclass
class IndexSmolInput:
    smol_id: str
    songs: list[SongFeatures] = field(default_factory=list)  # from analyze_smol; none: indexed by its text only


@dataclass
class IndexSmolResult:
    indexed: bool  # False: the smol has no row (not stored yet, or deleted)


@dataclass
class UnindexedSmolsInput:
    after: str = ""  # smol id: the next page starts after it
    limit: int = 50
    every: bool = False  # all smols, not only those without a vector (after a change to the vector's recipe)


@dataclass
class UnindexedSmolsResult:
    smol_ids: list[str]


@dataclass
class BackfillIndexInput:
    every: bool = False
    batch: int = 50
    after: str = ""  # where a continued run picks up
    indexed: int = 0  # carried over continue-as-new


@dataclass
class BackfillIndexResult:
    indexed: int
