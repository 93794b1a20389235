import re
import secrets

SMOL_ID_PATTERN = r"^[0-9a-f]{64}$"
MUSIC_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
MIXTAPE_ID_PATTERN = r"^[0-9a-f]{16}$"
_SMOL_ID = re.compile(SMOL_ID_PATTERN)


def new_smol_id() -> str:
    return secrets.token_hex(32)


def is_smol_id(value: str) -> bool:
    return bool(_SMOL_ID.match(value))


def image_key(smol_id: str) -> str:
    return f"{smol_id}.png"


def song_key(music_id: str) -> str:
    return f"{music_id}.mp3"
