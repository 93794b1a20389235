"""How rows look on the wire: the field names and formats the original service's clients read."""

from api.pagination import TIME_FORMAT


def when(value) -> str:
    return value.strftime(TIME_FORMAT)


def list_item(row) -> dict:
    """A smol in a list (`GET /`, `/created`, `/liked`, playlists, search results)."""
    return {
        "Id": row["id"], "Title": row["title"], "Song_1": row["song_1"], "Mint_Token": row["mint_token"],
        "Mint_Amm": row["mint_amm"], "Created_At": when(row["created_at"]),
    }  # fmt: skip
