"""How rows look on the wire: the field names and formats the original service's clients read."""

import orjson
from fastapi import Response

from api.pagination import when


def list_item(row) -> dict:
    """A smol in a list (`GET /`, `/created`, `/liked`, playlists, search results)."""
    return {
        "Id": row["id"], "Title": row["title"], "Song_1": row["song_1"], "Mint_Token": row["mint_token"],
        "Mint_Amm": row["mint_amm"], "Created_At": when(row["created_at"]),
    }  # fmt: skip


def json_response(answer: dict, headers: dict[str, str]) -> Response:
    """The answer as JSON, as FastAPI writes it from a route's model but without checking it against the model
    again (a route returning this answers the shape its `response_model` documents: the tests read it so)."""
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)


def public_base(request, settings) -> str:
    """Where clients reach this API: SMOL_PUBLIC_URL, else the request's own base URL."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def with_absolute_audio(kv_do: dict, base: str) -> dict:
    """`kv_do` with each song's `audio` playable from any origin: our archived `/song/<id>.mp3` made absolute, the
    provider's partial audio (absolute already) kept. A copy: the workflow view is shared between viewers."""
    if not kv_do.get("songs"):
        return kv_do
    songs = [{**song, "audio": base + song["audio"]} if (song.get("audio") or "").startswith("/song/") else song
             for song in kv_do["songs"]]  # fmt: skip
    return {**kv_do, "songs": songs}


NOT_FOUND = {404: {"description": "No such smol, or a private smol of someone else", "content": {"text/plain": {}}}}
