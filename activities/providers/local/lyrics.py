"""Lyrics in [Verse]/[Chorus] form, a title and style tags, all from the words of the prompt."""

import random

from activities.providers.local.vocab import (
    DEFAULT_GENRES,
    GENRES,
    genres_in,
    keywords,
    moods_in,
    stable_seed,
    words,
)
from contracts.smol import Lyrics

VERSE_LINES = [
    "I saw the {a} where the {b} begins",
    "Walking slow through {a} and {b}",
    "Every {a} hums a little tune",
    "The {b} is calling out my name",
    "We were painted in {colour} light",
    "Counting {a}s until the morning",
    "Hold the {b} close and let it glow",
    "Tiny pixels of a {a} dream",
]
CHORUS_LINES = [
    "Oh {a}, {a}, sing it back to me",
    "Turn it up, the {b} is free",
    "We are {colour} tonight",
    "Sixty-four pixels of {a} and {b}",
]
FILLER = ["heart", "city", "sky", "river", "signal", "echo", "window", "song"]


def _colour(description: str) -> str:
    for word in words(description):
        if word in ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "white", "gold", "grey"):
            return word
    return "silver"


def style_tags(prompt: str, seed: int) -> list[str]:
    tags = genres_in(prompt) + moods_in(prompt)
    rng = random.Random(stable_seed("style", prompt, seed))
    if not any(tag in GENRES for tag in tags):
        tags.insert(0, rng.choice(DEFAULT_GENRES))
    while len(tags) < 2:
        tags.append(rng.choice(["dreamy", "upbeat", "chill", "energetic", "nostalgic"]))
    return list(dict.fromkeys(tags))[:5]


def title_from(prompt: str) -> str:
    chosen = keywords(prompt)[:3] or ["untitled"]
    return " ".join(word.capitalize() for word in chosen)


def write_lyrics(prompt: str, description: str, instrumental: bool, seed: int) -> Lyrics:
    rng = random.Random(stable_seed("lyrics", prompt, seed))
    things = [w for w in keywords(prompt) if not w.endswith("ing") and w not in GENRES]
    nouns = things + [w for w in FILLER if w not in things]
    colour = _colour(description)

    def line(template: str) -> str:
        return template.format(a=rng.choice(nouns[:4]), b=rng.choice(nouns[:6]), colour=colour)

    title = title_from(prompt)
    style = style_tags(prompt, seed)
    if instrumental:
        return Lyrics(title=title, lyrics="", style=style)
    chorus = [line(t) for t in rng.sample(CHORUS_LINES, 3)]
    sections = [
        "[Verse]", *(line(t) for t in rng.sample(VERSE_LINES, 4)), "",
        "[Chorus]", *chorus, "",
        "[Verse]", *(line(t) for t in rng.sample(VERSE_LINES, 4)), "",
        "[Chorus]", *chorus,
    ]  # fmt: skip
    return Lyrics(title=title, lyrics="\n".join(sections), style=style)
