"""Words the local providers read from a prompt: genres, moods and colour themes."""

import hashlib
import re

STOPWORDS = set(
    "a an the and or of to in on at for with from by about into over under is are was were be been "
    "it its this that these those my your our their his her me you we they i song music track make "
    "about some very so just like as".split()
)

# genre tag -> (lowest bpm, highest bpm, lead timbre, drum pattern)
GENRES: dict[str, tuple[int, int, str, str]] = {
    "lofi": (72, 88, "triangle", "halftime"),
    "hip hop": (84, 96, "triangle", "backbeat"),
    "jazz": (96, 132, "sine", "swing"),
    "ambient": (66, 80, "sine", "sparse"),
    "house": (120, 126, "saw", "four"),
    "techno": (126, 134, "square", "four"),
    "disco": (112, 122, "saw", "four"),
    "synthwave": (96, 112, "saw", "backbeat"),
    "chiptune": (128, 150, "square", "four"),
    "rock": (112, 140, "saw", "backbeat"),
    "punk": (160, 180, "saw", "backbeat"),
    "metal": (140, 170, "saw", "backbeat"),
    "pop": (100, 124, "square", "backbeat"),
    "funk": (100, 116, "square", "backbeat"),
    "folk": (88, 110, "triangle", "sparse"),
    "reggae": (72, 84, "triangle", "halftime"),
    "drum and bass": (170, 176, "saw", "backbeat"),
    "trance": (132, 140, "saw", "four"),
    "blues": (76, 96, "triangle", "swing"),
    "country": (96, 116, "triangle", "backbeat"),
    "soul": (84, 100, "sine", "backbeat"),
    "classical": (70, 100, "sine", "sparse"),
}
GENRE_ALIASES = {
    "lo-fi": "lofi", "hiphop": "hip hop", "rap": "hip hop", "8-bit": "chiptune", "8bit": "chiptune",
    "retro": "synthwave", "edm": "house", "dance": "house", "dnb": "drum and bass", "jungle": "drum and bass",
    "orchestral": "classical", "piano": "classical", "acoustic": "folk", "guitar": "rock", "rave": "techno",
}  # fmt: skip
DEFAULT_GENRES = ["chiptune", "lofi", "synthwave", "pop", "house", "folk"]

MOODS = {
    "sad": "melancholic", "lonely": "melancholic", "rain": "melancholic", "tears": "melancholic",
    "happy": "upbeat", "sun": "upbeat", "summer": "upbeat", "party": "upbeat", "joy": "upbeat",
    "night": "dreamy", "dream": "dreamy", "moon": "dreamy", "stars": "dreamy", "space": "dreamy",
    "dark": "dark", "ghost": "dark", "shadow": "dark", "storm": "dark", "fire": "energetic",
    "fast": "energetic", "run": "energetic", "battle": "energetic", "calm": "chill", "sleep": "chill",
    "ocean": "chill", "sea": "chill", "love": "romantic", "heart": "romantic", "cat": "playful",
    "dog": "playful", "frog": "playful", "robot": "playful",
}  # fmt: skip
MINOR_MOODS = {"melancholic", "dark", "dreamy"}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'-]*", text.lower())


def keywords(text: str) -> list[str]:
    """Significant words of a prompt, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and len(word) > 2:
            seen.setdefault(word, None)
    return list(seen)


def stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def genres_in(text: str) -> list[str]:
    lowered = " ".join(words(text))
    found = [g for g in GENRES if re.search(rf"\b{re.escape(g)}\b", lowered)]
    found += [g for alias, g in GENRE_ALIASES.items() if re.search(rf"\b{re.escape(alias)}\b", lowered)]
    return list(dict.fromkeys(found))


def moods_in(text: str) -> list[str]:
    return list(dict.fromkeys(MOODS[w] for w in words(text) if w in MOODS))
