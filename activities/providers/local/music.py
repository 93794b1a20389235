"""A small offline synthesizer: drums, bass, chords and a melody, mixed to stereo and encoded to MP3.

Tempo, key, mode and timbre come from the song's style tags, so the same tags always make the same kind of
song; `variant` changes the melody, the chord voicing and the lead sound, so the two variants of a smol differ.
"""

import io
from dataclasses import dataclass

import lameenc
import numpy as np
from mutagen.id3 import APIC, ID3, TBPM, TCON, TIT2, TKEY, TPE1

from activities.providers.local.vocab import DEFAULT_GENRES, GENRES, MINOR_MOODS

SAMPLE_RATE = 44100
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 10]
MAJOR_PROGRESSIONS = [[0, 4, 5, 3], [5, 3, 0, 4], [0, 5, 3, 4], [0, 3, 4, 0], [1, 4, 0, 5]]
MINOR_PROGRESSIONS = [[0, 5, 2, 6], [0, 3, 4, 0], [0, 6, 5, 6], [0, 5, 3, 4]]
TIMBRES = ["square", "saw", "triangle", "sine"]
DRUM_PATTERNS = {  # sixteenth-note positions in a 4/4 bar
    "four": {"kick": [0, 4, 8, 12], "snare": [4, 12], "hat": [2, 6, 10, 14]},
    "backbeat": {"kick": [0, 8, 10], "snare": [4, 12], "hat": [0, 2, 4, 6, 8, 10, 12, 14]},
    "halftime": {"kick": [0, 10], "snare": [8], "hat": [0, 2, 4, 6, 8, 10, 12, 14]},
    "swing": {"kick": [0, 8], "snare": [4, 12], "hat": [0, 3, 4, 7, 8, 11, 12, 15]},
    "sparse": {"kick": [0, 8], "snare": [12], "hat": [4, 12]},
}


@dataclass(frozen=True)
class Arrangement:
    genre: str
    bpm: int
    root: int  # MIDI note of the key's tonic, octave 3
    minor: bool
    lead: str
    drums: str
    progression: tuple[int, ...]

    @property
    def key_name(self) -> str:
        return NOTE_NAMES[self.root % 12] + ("m" if self.minor else "")


def plan(style: list[str], seed: int) -> Arrangement:
    """Choose tempo, key, mode, timbre and groove from the style tags (and the seed, for what they leave open)."""
    rng = np.random.default_rng(seed)
    genre = next((tag for tag in style if tag in GENRES), DEFAULT_GENRES[seed % len(DEFAULT_GENRES)])
    low, high, lead, drums = GENRES[genre]
    minor = any(tag in MINOR_MOODS for tag in style) or ("upbeat" not in style and bool(rng.integers(0, 2)))
    progressions = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    return Arrangement(
        genre=genre,
        bpm=int(rng.integers(low, high + 1)),
        root=48 + int(rng.integers(0, 12)),
        minor=minor,
        lead=lead,
        drums=drums,
        progression=tuple(progressions[int(rng.integers(0, len(progressions)))]),
    )


def _freq(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _wave(kind: str, freq: float, n: int) -> np.ndarray:
    phase = freq * np.arange(n) / SAMPLE_RATE
    frac = phase % 1.0
    if kind == "sine":
        return np.sin(2 * np.pi * phase) + 0.3 * np.sin(4 * np.pi * phase)
    if kind == "square":
        return np.where(frac < 0.5, 0.6, -0.6)
    if kind == "saw":
        return (2 * frac - 1) * 0.7
    return 2 * np.abs(2 * frac - 1) - 1  # triangle


def _envelope(n: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    env = np.minimum(1.0, t / max(attack, 1e-4))
    env *= sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / max(decay, 1e-4))
    tail = min(n, int(release * SAMPLE_RATE))
    if tail:
        env[-tail:] *= np.linspace(1, 0, tail)
    return env


def _note(kind: str, midi: float, seconds: float, attack=0.005, decay=0.15, sustain=0.5) -> np.ndarray:
    n = max(1, int(seconds * SAMPLE_RATE))
    return _wave(kind, _freq(midi), n) * _envelope(n, attack, decay, sustain, 0.02)


class _Notes:
    """Notes made once per song: the bass, the chords and most melody notes come back bar after bar."""

    def __init__(self):
        self.made: dict[tuple, np.ndarray] = {}

    def note(self, kind: str, midi: float, seconds: float, attack=0.005, decay=0.15, sustain=0.5) -> np.ndarray:
        key = (kind, midi, max(1, int(seconds * SAMPLE_RATE)), attack, decay, sustain)
        if key not in self.made:
            self.made[key] = _note(kind, midi, seconds, attack, decay, sustain).astype(np.float32)
        return self.made[key]

    def bass(self, midi: float, seconds: float) -> np.ndarray:
        key = ("bass", midi, seconds)
        if key not in self.made:
            self.made[key] = 0.7 * self.note("sine", midi, seconds) + 0.3 * self.note("triangle", midi, seconds)
        return self.made[key]


def _drum_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    kick_freq = 45 + 90 * np.exp(-t * 30)
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / SAMPLE_RATE) * np.exp(-t * 14)
    ts = t[: int(0.2 * SAMPLE_RATE)]
    snare = rng.standard_normal(len(ts)) * np.exp(-ts * 22) * 0.6 + np.sin(2 * np.pi * 185 * ts) * np.exp(-ts * 30)
    th = t[: int(0.06 * SAMPLE_RATE)]
    hat = np.diff(rng.standard_normal(len(th) + 1)) * np.exp(-th * 70) * 0.25
    return {"kick": (kick * 1.1).astype(np.float32), "snare": (snare * 0.55).astype(np.float32),
            "hat": hat.astype(np.float32)}  # fmt: skip


class _Mix:
    """One mono bus per pan position, folded to stereo at the end: a note is added once, not once per channel."""

    def __init__(self, frames: int):
        self.frames = frames
        self.buses: dict[float, np.ndarray] = {}

    def add(self, start: float, signal: np.ndarray, pan: float = 0.0, gain: float = 1.0) -> None:
        """Add a mono signal at `start` seconds; pan -1 (left) .. 1 (right)."""
        begin = int(start * SAMPLE_RATE)
        if begin >= self.frames:
            return
        if pan not in self.buses:
            self.buses[pan] = np.zeros(self.frames, dtype=np.float32)
        piece = signal[: self.frames - begin]
        self.buses[pan][begin : begin + len(piece)] += piece * np.float32(gain)

    def stereo(self) -> np.ndarray:
        out = np.zeros((self.frames, 2), dtype=np.float32)
        for pan, bus in self.buses.items():
            out[:, 0] += bus * np.float32((1 - pan) / 2)
            out[:, 1] += bus * np.float32((1 + pan) / 2)
        self.buses.clear()
        return out


def _chord(arrangement: Arrangement, degree: int) -> list[int]:
    scale = MINOR if arrangement.minor else MAJOR
    notes = []
    for step in (degree, degree + 2, degree + 4):
        notes.append(arrangement.root + scale[step % 7] + 12 * (step // 7))
    return notes


def render(arrangement: Arrangement, seconds: float, variant: int, seed: int) -> np.ndarray:
    """Stereo float samples in -1..1, exactly `seconds` long."""
    rng = np.random.default_rng([seed, variant])
    frames = int(round(seconds * SAMPLE_RATE))
    mix, notes = _Mix(frames), _Notes()
    beat = 60.0 / arrangement.bpm
    sixteenth = beat / 4
    bar = beat * 4
    kit = _drum_kit(rng)
    pattern = DRUM_PATTERNS[arrangement.drums]
    scale = MINOR if arrangement.minor else MAJOR
    lead = arrangement.lead if variant == 0 else TIMBRES[(TIMBRES.index(arrangement.lead) + 1) % len(TIMBRES)]
    melody_octave = 72 if variant == 0 else 67

    degree_in_melody = int(rng.integers(0, 7))
    bars = int(np.ceil(seconds / bar))
    for index in range(bars):
        start = index * bar
        chord = _chord(arrangement, arrangement.progression[index % len(arrangement.progression)])
        for part, hits in pattern.items():
            for pos in hits:
                accent = 1.0 if pos % 4 == 0 else 0.7
                mix.add(start + pos * sixteenth, kit[part], pan=0.3 if part == "hat" else 0.0, gain=accent)
        bass_steps = range(0, 16, 2) if variant == 0 else (0, 4, 6, 8, 12, 14)
        for pos in bass_steps:
            mix.add(start + pos * sixteenth, notes.bass(chord[0] - 12, sixteenth * 2), gain=0.55)
        if variant == 0:
            for i, note in enumerate(chord):
                pad = notes.note("triangle", note, bar, attack=0.08, decay=0.6, sustain=0.6)
                mix.add(start, pad, pan=(-0.5, 0.0, 0.5)[i], gain=0.16)
        else:
            arpeggio = [chord[0], chord[1], chord[2], chord[1]]  # four notes a beat, so it keeps the pulse
            for pos in range(16):
                note = arpeggio[pos % 4] + 12 * (pos // 8)
                mix.add(
                    start + pos * sixteenth,
                    notes.note("sine", note, sixteenth, decay=0.08, sustain=0.2),
                    pan=-0.4,
                    gain=0.16,
                )
        if index < 1 or index >= bars - 1:
            continue  # the first and last bars are drums, bass and chords only
        pos = 0
        while pos < 16:
            length = int(rng.choice([1, 2, 2, 4, 4, 6])) if variant == 0 else int(rng.choice([2, 3, 3, 4]))
            if rng.random() < 0.15:
                pos += length
                continue  # a rest
            if pos % 4 == 0:
                degree_in_melody = scale.index((chord[int(rng.integers(0, 3))] - arrangement.root) % 12)
            else:
                degree_in_melody = int(np.clip(degree_in_melody + rng.integers(-2, 3), 0, 9))
            midi = melody_octave + scale[degree_in_melody % 7] + 12 * (degree_in_melody // 7) + arrangement.root - 48
            tone = notes.note(lead, midi, min(length, 16 - pos) * sixteenth, decay=0.2, sustain=0.4)
            mix.add(start + pos * sixteenth, tone, pan=-0.2 if variant == 0 else 0.2, gain=0.22)
            pos += length

    out = mix.stereo()
    out *= np.float32(1.2)
    np.tanh(out, out=out)
    fade = min(frames, int(1.5 * SAMPLE_RATE))
    out[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
    peak = float(np.max(np.abs(out))) or 1.0
    out *= np.float32(0.89 / peak)
    return out


def encode_mp3(
    samples: np.ndarray, *, title: str, artist: str, arrangement: Arrangement, cover_png: bytes | None
) -> bytes:
    """192 kbps stereo MP3 with ID3 title, artist, genre, tempo, key and the cover as front-cover art."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(192)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(2)
    # LAME's fast mode: twice as fast as 5, and at 192 kbps the decoded song is as close to the samples (SNR
    # measured on six styles: equal within 1 dB). The bit rate, not the search effort, decides what is heard here.
    encoder.set_quality(7)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    audio = bytes(encoder.encode(pcm) + encoder.flush())

    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.add(TPE1(encoding=3, text=artist))
    tags.add(TCON(encoding=3, text=arrangement.genre))
    tags.add(TBPM(encoding=3, text=str(arrangement.bpm)))
    tags.add(TKEY(encoding=3, text=arrangement.key_name))
    if cover_png:
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=cover_png))
    buffer = io.BytesIO(audio)
    tags.save(buffer)
    return buffer.getvalue()
