"""Describe a cover from its pixels: the main colours, the light, and the shapes in it."""

import io

import numpy as np
from PIL import Image

NAMED_COLOURS = {
    "black": (20, 20, 20), "charcoal": (60, 60, 70), "grey": (128, 128, 128), "white": (240, 240, 240),
    "red": (200, 40, 40), "crimson": (140, 20, 40), "orange": (240, 140, 40), "amber": (200, 150, 40),
    "yellow": (240, 220, 60), "olive": (120, 120, 40), "lime": (160, 230, 60), "green": (50, 160, 60),
    "forest green": (30, 80, 40), "teal": (40, 140, 140), "cyan": (60, 210, 220), "sky blue": (120, 180, 230),
    "blue": (50, 80, 200), "navy": (25, 30, 90), "indigo": (70, 40, 140), "purple": (130, 60, 170),
    "violet": (180, 120, 220), "magenta": (210, 60, 180), "pink": (240, 150, 190), "brown": (120, 70, 40),
    "tan": (200, 170, 120), "cream": (240, 230, 200),
}  # fmt: skip
_NAMES = list(NAMED_COLOURS)
_VALUES = np.array(list(NAMED_COLOURS.values()), dtype=np.float64)


def colour_name(rgb) -> str:
    return _NAMES[int(np.argmin(((_VALUES - np.asarray(rgb, dtype=np.float64)) ** 2).sum(axis=1)))]


def describe_png(prompt: str, png: bytes) -> str:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = np.asarray(image, dtype=np.float64)
    height, width, _ = pixels.shape

    counts: dict[str, int] = {}
    for count, rgb in image.getcolors(width * height) or []:
        name = colour_name(rgb)
        counts[name] = counts.get(name, 0) + count
    ranked = sorted(counts, key=counts.get, reverse=True)
    main, accents = ranked[:2], ranked[2:4]

    luma = pixels @ np.array([0.299, 0.587, 0.114])
    mean = luma.mean()
    light = "bright" if mean > 170 else "soft" if mean > 110 else "dim" if mean > 60 else "dark"
    top, bottom = luma[: height // 2].mean(), luma[height // 2 :].mean()
    direction = "from the sky above" if top > bottom + 15 else "from below" if bottom > top + 15 else "evenly"

    edges = (np.abs(np.diff(luma, axis=0)) > 25).mean() + (np.abs(np.diff(luma, axis=1)) > 25).mean()
    texture = "busy, jagged" if edges > 0.25 else "layered" if edges > 0.08 else "calm, open"
    centre = luma[height // 2 :, width // 4 : 3 * width // 4]
    symmetry = 1 - np.abs(centre - centre[:, ::-1]).mean() / 255
    figure = "a small symmetric figure stands in the foreground" if symmetry > 0.8 else "shapes scatter across it"

    sentences = [
        f"A {width}×{height} pixel-art scene for “{prompt.strip()[:120]}”.",
        f"{' and '.join(main).capitalize()} fill most of the frame"
        + (f", with touches of {' and '.join(accents)}." if accents else "."),
        f"The light is {light}, falling {direction}.",
        f"The picture is {texture}; {figure}.",
    ]
    return " ".join(sentences)
