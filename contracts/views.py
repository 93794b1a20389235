"""The client's view of a smol's progress (`kv_do`), built from its steps the one way: by the workflow's status query
while it runs, and by the API from the saved steps once it has stopped."""

from dataclasses import fields

from contracts.smol import LoadStepsResult, Payload, Song
from contracts.steps import SongStatus


def _fields(record) -> dict:
    """A dataclass's fields as a dict, its values as they are (`dataclasses.asdict` deep-copies them: five times
    slower, and every GET /{id} makes this view)."""
    return {field.name: getattr(record, field.name) for field in fields(record)}


def payload_view(payload: Payload) -> dict:
    """The payload as clients see it: without the creator's webhook URL, and with the song model fields only when
    the creator chose them."""
    optional = ("song_model", "song_params", "title", "metadata")
    return {k: v for k, v in _fields(payload).items() if k != "webhook_url" and not (k in optional and v is None)}


def smol_view(saved: LoadStepsResult, songs: list[Song], requested: Payload | None = None) -> dict:
    """`kv_do`: what exists of the smol so far. `songs` as last known (absent ones are shown as queued); `requested`
    is the payload a run was started with, shown until the saved one exists."""
    kv: dict = {"image": saved.image_key is not None}
    if saved.payload or requested:
        kv["payload"] = payload_view(saved.payload or requested)
    if saved.description is not None:
        kv["description"] = saved.description
    if saved.lyrics:
        kv["lyrics"] = _fields(saved.lyrics)
    if saved.nsfw:
        kv["nsfw"] = _fields(saved.nsfw)
    if saved.song_ids:
        kv["song_ids"] = list(saved.song_ids)
        known = {song.music_id: song for song in songs}
        kv["songs"] = [_fields(known.get(music_id) or Song(music_id, SongStatus.QUEUED)) for music_id in saved.song_ids]
    return kv
