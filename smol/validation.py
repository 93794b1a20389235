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


def storable(text: str) -> bool:
    """Whether Postgres can hold this text: no NUL, no lone surrogate (what a JSON "\\ud800" decodes to)."""
    return _UNSTORABLE.search(text) is None


# Control, format (the bidirectional overrides among them), private-use, unassigned and separator characters: a
# display name holding one could pass for another's or reorder the text around it ("\u202egnp.exe").
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def check_display_name(name: str) -> str:
    """A display name shown beside a user's smols: visible characters and plain spaces only, trimmed."""
    if any(unicodedata.category(char) in _HIDDEN_CATEGORIES for char in name):
        raise ValueError("a display name may hold only visible characters and spaces")
    return name.strip()
