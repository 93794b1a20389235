"""Procedural 64×64 pixel art: a banded sky, a sun or moon, layered ridges and a mirrored sprite."""

import colorsys
import io
import random

import numpy as np
from PIL import Image

from activities.providers.local.vocab import stable_seed, words

SIZE = 64
# theme -> (words that pick it, base hue 0..1, saturation, sky value, night)
THEMES = {
    "ocean": ({"ocean", "sea", "water", "wave", "rain", "blue", "river", "lake", "fish"}, 0.58, 0.65, 0.85, False),
    "fire": ({"fire", "lava", "volcano", "desert", "red", "hot", "dragon", "sunset", "flame"}, 0.03, 0.8, 0.95, False),
    "forest": ({"forest", "tree", "trees", "green", "jungle", "grass", "frog", "garden", "leaf"}, 0.3, 0.6, 0.8, False),
    "night": ({"night", "dark", "moon", "space", "star", "stars", "ghost", "midnight", "galaxy"}, 0.7, 0.6, 0.35, True),
    "snow": ({"snow", "ice", "winter", "cold", "frost", "white", "mountain"}, 0.55, 0.2, 0.95, False),
    "candy": ({"candy", "pink", "love", "heart", "sweet", "cake", "flower", "cute"}, 0.9, 0.5, 0.95, False),
    "gold": ({"gold", "money", "king", "queen", "treasure", "crown", "yellow", "sun"}, 0.12, 0.75, 0.95, False),
}  # fmt: skip


def _theme(prompt: str, rng: random.Random) -> tuple[float, float, float, bool]:
    prompt_words = set(words(prompt))
    for _, (keys, hue, sat, value, night) in THEMES.items():
        if prompt_words & keys:
            return hue, sat, value, night
    return rng.random(), 0.45 + 0.4 * rng.random(), 0.6 + 0.35 * rng.random(), rng.random() < 0.25


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return np.array([r * 255, g * 255, b * 255], dtype=np.uint8)


def _ridge(rng: random.Random, base: float, roughness: float) -> np.ndarray:
    """A 1-D skyline by midpoint displacement, SIZE+1 heights in pixels."""
    heights = np.zeros(SIZE + 1)
    heights[0], heights[-1] = base + rng.uniform(-6, 6), base + rng.uniform(-6, 6)
    step, spread = SIZE, roughness
    while step > 1:
        half = step // 2
        for x in range(half, SIZE, step):
            heights[x] = (heights[x - half] + heights[x + half]) / 2 + rng.uniform(-spread, spread)
        step, spread = half, spread * 0.55
    return heights


def _sprite(rng: random.Random, size: int = 14) -> np.ndarray:
    """A mirrored random creature mask: 0 empty, 1 body, 2 outline, 3 eye."""
    half = (size + 1) // 2
    body = np.zeros((size, size), dtype=np.uint8)
    for y in range(1, size - 1):
        for x in range(1, half):
            edge_bias = 0.25 + 0.5 * (x / half)
            if rng.random() < edge_bias:
                body[y, x] = body[y, size - 1 - x] = 1
    out = body.copy()
    for y in range(size):
        for x in range(size):
            if body[y, x] == 0 and body[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].any():
                out[y, x] = 2
    eye_y = size // 3
    out[eye_y, half - 2] = out[eye_y, size - half + 1] = 3
    return out


def draw(prompt: str, seed: int) -> Image.Image:
    rng = random.Random(stable_seed(prompt, seed))
    hue, sat, value, night = _theme(prompt, rng)
    pixels = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)

    bands = 5
    for y in range(SIZE):
        band = min(bands - 1, y * bands // 40)
        pixels[y, :] = _rgb(
            hue + 0.02 * band, sat * (0.6 + 0.1 * band), value * (1 - 0.08 * band) + (0.1 * band if night else 0)
        )
    if night:
        for _ in range(28):
            pixels[rng.randrange(0, 36), rng.randrange(0, SIZE)] = (250, 250, 220)

    cx, cy, radius = rng.randrange(10, 54), rng.randrange(6, 22), rng.randrange(4, 9)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    pixels[disc] = (235, 235, 210) if night else _rgb(hue + 0.5 + rng.uniform(-0.08, 0.08), 0.7, 1.0)

    for layer, (base, rough) in enumerate([(30, 14), (42, 9), (52, 4)]):
        skyline = _ridge(rng, base + rng.uniform(-4, 4), rough)
        colour = _rgb(hue + 0.05 * layer - 0.1, sat * (0.7 + 0.15 * layer), value * (0.75 - 0.2 * layer))
        for x in range(SIZE):
            pixels[int(np.clip(skyline[x], 0, SIZE)) :, x] = colour

    sprite = _sprite(rng)
    body = _rgb(hue + 0.4 + rng.uniform(-0.1, 0.1), 0.75, 0.95)
    outline = _rgb(hue, 0.6, 0.15)
    ox, oy = (SIZE - sprite.shape[1]) // 2 + rng.randrange(-14, 15), SIZE - sprite.shape[0] - rng.randrange(2, 8)
    for (y, x), cell in np.ndenumerate(sprite):
        if cell:
            pixels[oy + y, ox + x] = {1: body, 2: outline, 3: (255, 255, 255)}[int(cell)]
    return Image.fromarray(pixels, "RGB")


def draw_png(prompt: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    draw(prompt, seed).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
