"""The plan-driven renderer: a SoundFlow track from a TrackSpec (genre, bpm, key, layer levels, nature ambience).

It reuses the local synthesizer's building blocks (notes, drum kit, chords) but renders each layer once per
four-bar cycle, wrapped so the cycle loops seamlessly, and tiles it over the track with per-bar gains that shape
an intro, a breakdown and an outro: a 180 s track is a few dozen array operations, not thousands of notes.
"""

import io
import re

import lameenc
import numpy as np
from mutagen.id3 import APIC, ID3, TBPM, TCON, TIT2, TKEY, TPE1, TXXX

from activities.providers.local.music import (
    DRUM_PATTERNS,
    MAJOR,
    MAJOR_PROGRESSIONS,
    MINOR,
    MINOR_PROGRESSIONS,
    NOTE_NAMES,
    SAMPLE_RATE,
    Arrangement,
    _chord,
    _drum_kit,
    _note,
)
from activities.soundflow.nature import add_ambience
from contracts.catalog import TrackSpec

KEY_PATTERN = re.compile(r"^([A-G])([#b]?)(m?)$")
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
# genre -> (drum pattern, lead timbre, pad timbre, bass style, music style)
SOUNDS: dict[str, tuple[str, str, str, str, str]] = {
    "deep": ("four", "sine", "triangle", "offbeat", "sparse"),
    "house": ("four", "square", "saw", "offbeat", "melody"),
    "techno": ("four", "saw", "square", "eighths", "arp"),
    "synth": ("backbeat", "saw", "saw", "eighths", "melody"),
    "lofi": ("halftime", "triangle", "sine", "long", "melody"),
    "chillout": ("halftime", "sine", "triangle", "long", "sparse"),
    "lounge": ("swing", "sine", "triangle", "walk", "melody"),
    "jazz": ("swing", "triangle", "sine", "walk", "melody"),
    "ambient": ("sparse", "sine", "triangle", "long", "sparse"),
    "classic": ("sparse", "triangle", "sine", "long", "melody"),
    "trance": ("four", "saw", "saw", "offbeat", "arp"),
    "edm": ("four", "square", "saw", "eighths", "arp"),
    "dance": ("four", "square", "triangle", "offbeat", "melody"),
    "bass": ("halftime", "saw", "square", "eighths", "sparse"),
}
GENRES = tuple(SOUNDS)
LAYER_GAIN = {"drums": 0.9, "bass": 0.55, "music": 0.22, "pad": 0.14}


def parse_key(key: str) -> tuple[int, bool]:
    """(MIDI root in octave 3, minor) of a key such as "Dm", "F#", "Bbm"."""
    match = KEY_PATTERN.match(key)
    if not match:
        raise ValueError(f"key {key!r} is not like C, F#m or Bb")
    name = match.group(1) + match.group(2)
    return 48 + NOTE_NAMES.index(FLATS.get(name, name)), bool(match.group(3))


def arrangement_of(spec: TrackSpec, seed: int) -> Arrangement:
    root, minor = parse_key(spec.key)
    drums, lead = SOUNDS[spec.genre][0], SOUNDS[spec.genre][1]
    progressions = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    progression = tuple(progressions[seed % len(progressions)])
    return Arrangement(spec.genre, spec.bpm, root, minor, lead, drums, progression)


class _Cycle:
    """Stereo samples of one cycle; what is added past its end wraps to its start, so the cycle tiles seamlessly."""

    def __init__(self, frames: int):
        self.out = np.zeros((frames, 2), np.float32)

    def add(self, start: float, signal: np.ndarray, pan: float = 0.0, gain: float = 1.0) -> None:
        frames = len(self.out)
        begin = int(start * SAMPLE_RATE) % frames
        piece = (signal[:frames] * gain).astype(np.float32)
        left, right = piece * (1 - pan) / 2, piece * (1 + pan) / 2
        first = min(len(piece), frames - begin)
        self.out[begin : begin + first, 0] += left[:first]
        self.out[begin : begin + first, 1] += right[:first]
        if first < len(piece):
            self.out[: len(piece) - first, 0] += left[first:]
            self.out[: len(piece) - first, 1] += right[first:]


def _drums(a: Arrangement, kit, bar: float, bars: int, energy: float) -> _Cycle:
    cycle = _Cycle(int(round(bars * bar * SAMPLE_RATE)))
    sixteenth = bar / 16
    for index in range(bars):
        for part, hits in DRUM_PATTERNS[a.drums].items():
            if part == "hat" and energy > 0.6:
                hits = range(0, 16, 2) if a.drums != "sparse" else hits
            for pos in hits:
                accent = 1.0 if pos % 4 == 0 else 0.7
                cycle.add(index * bar + pos * sixteenth, kit[part], pan=0.3 if part == "hat" else 0.0, gain=accent)
        if index == bars - 1 and energy > 0.5:  # a fill into the next cycle
            for pos in (13, 14, 15):
                cycle.add(index * bar + pos * sixteenth, kit["snare"], gain=0.5)
    return cycle


def _bass(a: Arrangement, style: str, bar: float, bars: int) -> _Cycle:
    cycle = _Cycle(int(round(bars * bar * SAMPLE_RATE)))
    sixteenth = bar / 16
    for index in range(bars):
        chord = _chord(a, a.progression[index % len(a.progression)])
        root = chord[0] - 12
        if style == "long":
            steps = [(0, 16, root)]
        elif style == "walk":
            steps = [(0, 4, root), (4, 4, chord[1] - 12), (8, 4, chord[2] - 12), (12, 4, root + 12 - 1)]
        elif style == "offbeat":
            steps = [(pos, 2, root) for pos in (2, 6, 10, 14)]
        else:
            steps = [(pos, 2, root) for pos in range(0, 16, 2)]
        for pos, length, note in steps:
            tone = 0.7 * _note("sine", note, length * sixteenth) + 0.3 * _note("triangle", note, length * sixteenth)
            cycle.add(index * bar + pos * sixteenth, tone)
    return cycle


def _pad(a: Arrangement, timbre: str, bar: float, bars: int) -> _Cycle:
    cycle = _Cycle(int(round(bars * bar * SAMPLE_RATE)))
    for index in range(bars):
        chord = _chord(a, a.progression[index % len(a.progression)])
        for i, note in enumerate(chord):
            for detune, pan in ((-0.08, -0.6), (0.08, 0.6)):  # two slightly detuned voices: width
                tone = _note(timbre, note + detune, bar * 1.05, attack=0.3, decay=0.8, sustain=0.7)
                cycle.add(index * bar, tone, pan=pan * (i - 1) / 1 if i != 1 else pan / 2, gain=0.5)
    return cycle


def _music(a: Arrangement, style: str, bar: float, bars: int, energy: float, rng: np.random.Generator) -> _Cycle:
    cycle = _Cycle(int(round(bars * bar * SAMPLE_RATE)))
    sixteenth = bar / 16
    scale = MINOR if a.minor else MAJOR
    degree = int(rng.integers(0, 7))
    for index in range(bars):
        chord = _chord(a, a.progression[index % len(a.progression)])
        if style == "arp":
            pattern = [chord[0], chord[1], chord[2], chord[1] + 12]
            for pos in range(16):
                note = pattern[pos % 4] + 12
                cycle.add(index * bar + pos * sixteenth, _note(a.lead, note, sixteenth, decay=0.08, sustain=0.2),
                          pan=-0.3, gain=0.8)  # fmt: skip
            continue
        pos = 0
        lengths = [4, 8, 8, 16] if style == "sparse" else [1, 2, 2, 4, 4, 6]
        while pos < 16:
            length = int(rng.choice(lengths))
            if rng.random() < 0.35 - 0.25 * energy:  # calmer tracks rest more
                pos += length
                continue
            if pos % 4 == 0:
                degree = scale.index((chord[int(rng.integers(0, 3))] - a.root) % 12)
            else:
                degree = int(np.clip(degree + rng.integers(-2, 3), 0, 9))
            midi = 72 + scale[degree % 7] + 12 * (degree // 7) + a.root - 48
            tone = _note(a.lead, midi, min(length, 16 - pos) * sixteenth, decay=0.25, sustain=0.4)
            cycle.add(index * bar + pos * sixteenth, tone, pan=-0.2)
            pos += length
    return cycle


def _bar_gains(layer: str, bars: int) -> np.ndarray:
    """Per-bar gain 0..1 of a layer: the arrangement's shape (intro, breakdown, outro)."""
    gains = np.ones(bars + 1, np.float32)
    intro, outro = min(4, bars // 4), min(4, bars // 4)
    breakdown = range(int(bars * 0.55), int(bars * 0.55) + min(8, bars // 8))
    if layer in ("drums", "bass"):
        gains[:intro] = 0.0 if layer == "drums" else 0.5
        gains[list(breakdown)] = 0.0 if layer == "drums" else 0.6
        if outro:
            gains[bars - outro :] = np.linspace(1, 0, outro + 1)
    if layer == "music":
        gains[: intro // 2] = 0.0
        gains[list(breakdown)] = 0.5
    return gains


def render_track(spec: TrackSpec, seed: int, seconds: float | None = None) -> np.ndarray:
    """Stereo float32 samples in -1..1, exactly `seconds` (default the spec's) long."""
    seconds = seconds or spec.seconds
    frames = int(round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(seed)
    a = arrangement_of(spec, seed)
    _, _, pad_timbre, bass_style, music_style = SOUNDS[spec.genre]
    energy = (spec.energy_min + spec.energy_max) / 200
    bar = 240.0 / spec.bpm
    bars = 4
    cycles = {
        "drums": _drums(a, _drum_kit(rng), bar, bars, energy),
        "bass": _bass(a, bass_style, bar, bars),
        "pad": _pad(a, pad_timbre, bar, bars),
        "music": _music(a, music_style, bar, bars, energy, rng),
    }
    out = np.zeros((frames, 2), np.float32)
    _mix_layers(out, cycles, spec.layers, int(np.ceil(seconds / bar)) + 1, len(cycles["drums"].out))
    add_ambience(out, spec.nature_tags, spec.ambience_min, spec.ambience_max, seed)
    fade_in, fade_out = min(frames, int(0.5 * SAMPLE_RATE)), min(frames, int(2.0 * SAMPLE_RATE))
    out[:fade_in] *= np.linspace(0, 1, fade_in, dtype=np.float32)[:, None]
    out[frames - fade_out :] *= np.linspace(1, 0, fade_out, dtype=np.float32)[:, None]
    peak = float(max(out.max(), -out.min())) or 1.0
    out *= 0.89 / peak
    return out


def _mix_layers(out: np.ndarray, cycles: dict[str, _Cycle], levels: dict[str, int], bars: int, cycle: int) -> None:
    """Write the layers bar by bar at their levels and per-bar gains. A bar whose gains are steady is one slice of a
    premixed cycle (cached by gains), so most of the track is plain copies; only ramps are mixed sample by sample."""
    layers = [(name, c.out, spec_level) for name, c in cycles.items()
              if (spec_level := levels.get(name, 0) / 100 * LAYER_GAIN[name]) > 0]  # fmt: skip
    gains = {name: _bar_gains(name, bars) * level for name, _, level in layers}
    premixed: dict[tuple, np.ndarray] = {}
    frames = len(out)
    for index in range(bars):
        start = (index // 4) * cycle + (index % 4) * cycle // 4
        if start >= frames:
            break
        lo, hi = (index % 4) * cycle // 4, (index % 4 + 1) * cycle // 4
        length = min(hi - lo, frames - start)
        steady = tuple(round(float(gains[name][index]), 4) for name, _, _ in layers)
        if all(gains[name][index] == gains[name][min(index + 1, bars)] for name, _, _ in layers):
            if steady not in premixed:
                premixed[steady] = sum((loop * g for (_, loop, _), g in zip(layers, steady, strict=True) if g),
                                       np.zeros((cycle, 2), np.float32))  # fmt: skip
            out[start : start + length] = premixed[steady][lo : lo + length]
            continue
        for name, loop, _ in layers:
            ramp = np.linspace(gains[name][index], gains[name][min(index + 1, bars)], hi - lo, dtype=np.float32)
            out[start : start + length] += loop[lo : lo + length] * ramp[:length, None]


def encode(samples: np.ndarray, *, bitrate: int, quality: int, title: str, artist: str, spec: TrackSpec,
           cover_png: bytes | None = None, comment: str = "") -> bytes:  # fmt: skip
    """Stereo MP3 at `bitrate` kbps with ID3 title, artist, genre, tempo, key and the cover if any."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(2)
    encoder.set_quality(quality)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    audio = bytes(encoder.encode(pcm) + encoder.flush())
    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.add(TPE1(encoding=3, text=artist))
    tags.add(TCON(encoding=3, text=spec.genre))
    tags.add(TBPM(encoding=3, text=str(spec.bpm)))
    tags.add(TKEY(encoding=3, text=spec.key))
    if comment:
        tags.add(TXXX(encoding=3, desc="soundflow", text=comment))
    if cover_png:
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=cover_png))
    buffer = io.BytesIO(audio)
    tags.save(buffer)
    return buffer.getvalue()


def make_mp3(spec: TrackSpec, *, seed: int, bitrate: int, quality: int, title: str,
             seconds: float | None = None) -> bytes:  # fmt: skip
    """Render and encode in one call (what a render process runs)."""
    samples = render_track(spec, seed, seconds)
    return encode(samples, bitrate=bitrate, quality=quality, title=title, artist="SoundFlow", spec=spec)
