"""Procedural nature ambience: rain, wind, flowing water, waves, birds and room tone, in stereo.

Steady sounds are noise shaped in the frequency domain over a loop of LOOP frames: an FFT-made loop is periodic, so
it tiles without a seam, and the whole track costs a few FFTs. Birds are placed one by one over the whole track.
"""

import numpy as np

from activities.providers.local.music import SAMPLE_RATE

LOOP = 1 << 19  # ≈ 11.9 s
CONTROL = 512  # frames per step of the slow envelopes
# nature tag -> sounds it brings
TAG_SOUNDS = {
    "rain": ("rain",), "storm": ("rain", "wind"), "wind": ("wind",), "water": ("stream",), "stream": ("stream",),
    "river": ("stream",), "ocean": ("waves",), "waves": ("waves",), "sea": ("waves",), "birds": ("birds",),
    "forest": ("birds", "wind"), "minimal": ("room",),
}  # fmt: skip
SOUND_GAIN = {"rain": 1.0, "wind": 0.8, "stream": 0.8, "waves": 0.9, "birds": 0.6, "room": 0.7}
LEVEL = 0.12  # ambience at 100 against the music layers


def sounds_for(tags: list[str]) -> list[str]:
    """The sounds nature tags ask for (room tone when none is known)."""
    found = [sound for tag in tags for sound in TAG_SOUNDS.get(tag.lower(), ())]
    return list(dict.fromkeys(found)) or ["room"]


def _shaped(rng: np.random.Generator, shape) -> np.ndarray:
    """A stereo noise loop (LOOP × 2) whose spectrum follows `shape(freqs)`, at RMS 1."""
    freqs = np.fft.rfftfreq(LOOP, 1 / SAMPLE_RATE)
    gain = shape(np.maximum(freqs, 1.0))
    channels = []
    for _ in range(2):
        spectrum = np.fft.rfft(rng.standard_normal(LOOP).astype(np.float32)) * gain
        channels.append(np.fft.irfft(spectrum, LOOP))
    loop = np.stack(channels, axis=1)
    return (loop / (np.sqrt(np.mean(loop**2)) or 1.0)).astype(np.float32)


def _band(low: float, high: float, slope: float = 1.0):
    return lambda f: (f / (f + low)) ** slope / (1 + (f / high) ** (2 * slope))


def _gusts(rng: np.random.Generator, steps: int, period: float = 6.0, depth: float = 0.5) -> np.ndarray:
    """A smooth random envelope around 1 (± depth) changing over about `period` seconds, one value per CONTROL."""
    knots = max(2, int(steps * CONTROL / SAMPLE_RATE / period) + 2)
    return 1 + depth * np.interp(np.linspace(0, knots - 1, steps), np.arange(knots), rng.uniform(-1, 1, knots))


def _loop_sound(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "rain":
        hiss = _shaped(rng, _band(800, 9000))
        # droplets: sparse impulses through a short resonant click, circular in the loop
        impulses = np.zeros((LOOP, 2), np.float32)
        count = int(LOOP / SAMPLE_RATE * 40)
        impulses[rng.integers(0, LOOP, count), rng.integers(0, 2, count)] = rng.uniform(0.5, 3.0, count)
        t = np.arange(int(0.012 * SAMPLE_RATE)) / SAMPLE_RATE
        click = np.zeros(LOOP, np.float32)
        click[: len(t)] = np.sin(2 * np.pi * 3200 * t) * np.exp(-t * 500)
        kernel = np.fft.rfft(click)
        drops = np.fft.irfft(np.fft.rfft(impulses, axis=0) * kernel[:, None], LOOP, axis=0)
        return hiss + 2.5 * drops.astype(np.float32)
    if kind == "wind":
        return _shaped(rng, lambda f: np.exp(-((np.log(f) - np.log(350)) ** 2) / (2 * 0.7**2)))
    if kind == "stream":
        water = _shaped(rng, _band(500, 5000, 1.5))
        bubbling = _shaped(rng, lambda f: np.exp(-((f - 6) ** 2) / 8))[:, :1]  # a 4–8 Hz wobble
        return water * (1 + 0.5 * np.tanh(bubbling))
    if kind == "waves":
        surf = _shaped(rng, _band(150, 2500))
        t = np.arange(LOOP) / LOOP
        swell = 0.35 + 0.65 * np.sin(np.pi * (t * 2 % 1)) ** 2  # two waves per loop
        return surf * swell[:, None].astype(np.float32)
    return _shaped(rng, lambda f: 1 / np.sqrt(f) / (1 + (f / 2500) ** 2))  # room tone: soft pink noise


def _add_birds(out: np.ndarray, rng: np.random.Generator, gain_at) -> None:
    """Bird calls, a few chirps each, every few seconds, at `gain_at(frame)` of where they start."""
    frames = len(out)
    at = rng.uniform(0.5, 3.0)
    while at < frames / SAMPLE_RATE - 1:
        pan = rng.uniform(-0.8, 0.8)
        pitch = rng.uniform(2500, 5500)
        start = at
        gain = gain_at(int(at * SAMPLE_RATE))
        for _ in range(int(rng.integers(2, 7))):  # one call: a few chirps
            length = rng.uniform(0.05, 0.14)
            t = np.arange(int(length * SAMPLE_RATE)) / SAMPLE_RATE
            sweep = pitch * (1 + rng.uniform(-0.35, 0.35) * t / length)
            chirp = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.sin(np.pi * t / length) ** 2
            begin = int(start * SAMPLE_RATE)
            piece = (chirp[: frames - begin] * gain).astype(np.float32)
            out[begin : begin + len(piece), 0] += piece * (1 - pan) / 2
            out[begin : begin + len(piece), 1] += piece * (1 + pan) / 2
            start += length + rng.uniform(0.03, 0.12)
        at = start + rng.exponential(2.5)


def add_ambience(out: np.ndarray, tags: list[str], level_min: float, level_max: float, seed: int) -> None:
    """Add to `out` (frames × 2) the ambience of `tags`, whose level wanders between level_min and level_max (0–100)
    over the track: a slow swell from the range's bottom to its top and back."""
    if level_max <= 0:
        return
    rng = np.random.default_rng([seed, 7])
    frames = len(out)
    t = np.arange(frames // CONTROL + 2, dtype=np.float32) * CONTROL / SAMPLE_RATE
    swell = 0.5 - 0.5 * np.cos(2 * np.pi * t / 90.0 + rng.uniform(0, np.pi))
    level = (level_min + (level_max - level_min) * swell) / 100 * LEVEL
    kinds = sounds_for(tags)
    steady = [kind for kind in kinds if kind not in ("birds", "wind")]
    loops = []
    if steady:  # the steady sounds share one envelope: one pass over the track for all of them
        loops.append((sum(_loop_sound(kind, rng) * SOUND_GAIN[kind] for kind in steady), level))
    if "wind" in kinds:  # wind comes in gusts
        loops.append((_loop_sound("wind", rng) * SOUND_GAIN["wind"], level * _gusts(rng, len(t))))
    for loop, control in loops:
        gain = np.repeat(control.astype(np.float32), CONTROL)[:frames, None]
        for start in range(0, frames, LOOP):
            piece = loop[: frames - start]
            out[start : start + len(piece)] += piece * gain[start : start + len(piece)]
    if "birds" in kinds:
        _add_birds(out, rng, lambda frame: float(level[frame // CONTROL]) * SOUND_GAIN["birds"] * 3.0)
