"""Rules on what a client may ask for, shared by the API and the pipeline's first step."""

import re
import unicodedata

from smol.errors import InvalidInput

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

MAX_PROMPT = 2280
MAX_PROMPT_INSTRUMENTAL = 380
MAX_PLAYLIST = 100


def check_prompt(prompt: str | None, instrumental: bool) -> str:
    if prompt is None or not prompt.strip():
        raise InvalidInput("prompt is required")
    limit = MAX_PROMPT_INSTRUMENTAL if instrumental else MAX_PROMPT
    if len(prompt) > limit:
        kind = "an instrumental prompt" if instrumental else "a prompt"
        raise InvalidInput(f"{kind} may be at most {limit} characters (got {len(prompt)})")
    if "\x00" in prompt:
        raise InvalidInput("prompt must not contain NUL characters")
    return prompt


def check_playlist(playlist: str | None) -> str | None:
    if playlist is None:
        return None
    playlist = playlist.strip()
    if not playlist or len(playlist) > MAX_PLAYLIST or "\x00" in playlist:
        raise InvalidInput(f"playlist must be 1 to {MAX_PLAYLIST} characters")
    return playlist


def check_shown_playlist(playlist: str | None) -> str | None:
    """A playlist name as a new request may give it (runs already queued keep check_playlist's older rule)."""
    playlist = check_playlist(playlist)
    if playlist is not None and _hides_or_reorders(playlist):
        raise InvalidInput("playlist must hold only visible characters and spaces")
    return playlist


# Characters that reorder the text around them ("\u202egnp.exe" shows as "exe.png"); the rest of Cf (the joiners
# of emoji and of Persian, soft hyphens) is ordinary text.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BREAKING = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls, lone surrogates, line and paragraph separators


def _hides_or_reorders(text: str, lines: bool = False) -> bool:
    return any(
        char in _BIDI_CONTROLS or (unicodedata.category(char) in _BREAKING and not (lines and char in "\n\t"))
        for char in text
    )


def check_shown_text(text: str, lines: bool = False) -> str:
    """Text others are shown (a title, a description): no control characters and no bidirectional overrides that
    would reorder what is around it; with `lines`, new lines and tabs are fine."""
    if _hides_or_reorders(text, lines):
        raise ValueError("may hold only visible characters and spaces" + (", new lines and tabs" if lines else ""))
    return text


def storable(text: str) -> bool:
    """Whether Postgres can hold this text: no NUL, no lone surrogate (what a JSON "\\ud800" decodes to)."""
    return _UNSTORABLE.search(text) is None


# Control, format (the bidirectional overrides among them), private-use, unassigned and separator characters: a
# display name holding one could pass for another's or reorder the text around it ("\u202egnp.exe").
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern): a name of them looks empty.
_BLANK = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}
_MOST_MARKS = 3  # combining marks on one character: enough for any script, too few to paint over the lines around


def check_display_name(name: str) -> str:
    """A display name shown beside a user's smols: visible characters and plain spaces only, trimmed."""
    marks = 0
    for char in name:
        category = unicodedata.category(char)
        if category in _HIDDEN_CATEGORIES or char in _BLANK or (category == "Zs" and char != " "):
            raise ValueError("a display name may hold only visible characters and spaces")
        marks = marks + 1 if category in ("Mn", "Me") else 0
        if marks > _MOST_MARKS:
            raise ValueError(f"a display name may hold at most {_MOST_MARKS} combining marks on a character")
    return name.strip()
