"""Songs with HTTP ranges, covers with nearest-neighbour scaling."""

import asyncio
import io
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from PIL import Image

from api.deps import PoolDep, SettingsDep, StoreDep, viewer_address
from api.services import tallies
from smol import repo
from smol.errors import InvalidInput, NotFound, RangeNotSatisfiable
from smol.ids import image_key, song_key

router = APIRouter(tags=["media"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MEDIA_ERRORS = {404: {"description": "Unknown id, or media of a private or unsafe smol of someone else",
                       "content": {"text/plain": {}}}}  # fmt: skip
# A finished smol anyone may see never changes under its id; anything else is the owner's (or may yet be flagged).
CACHING = {
    "public": {"Cache-Control": "public, max-age=31536000, immutable"},
    "private": {"Cache-Control": "private, max-age=600", "Vary": "Authorization, Cookie"},
}


ViewerDep = Annotated[str | None, Depends(viewer_address)]


async def _access(pool, viewer: str | None, **media) -> dict:
    """The caching headers for this viewer of a cover (`smol_id`) or song (`music_id`); NotFound if they may not get
    it: the one visibility rule, checked before any byte, redirect or hand-over (repo.media_access)."""
    access = await repo.media_access(pool, viewer, **media)
    if access is None:
        raise NotFound("not found")
    return dict(CACHING[access])


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive of a single `bytes=` range; None to send the whole file; 416 if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # not a single byte range we understand: RFC 9110 lets us ignore it
    first, last = (_byte_position(group) for group in match.groups())
    if first is None:  # suffix: the last N bytes
        if last == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        raise RangeNotSatisfiable(size)
    return first, min(last, size - 1) if last is not None else size - 1


def _byte_position(digits: str) -> int | None:
    """None for an empty part; else the number, capped far beyond any file (int() refuses over 4300 digits)."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


async def _access_check(pool, viewer: str | None, music_id: str) -> Response:
    """nginx asking before it sends a later range of a song from the file store itself (api/nginx/smol.conf.template):
    204 with the song's caching headers if the caller may have it, else 403 (which nginx answers as 404). Counts
    no play and reads no byte. Tells nobody more than a GET would."""
    access = await repo.media_access(pool, viewer, music_id=music_id)
    if access is None:
        return Response(status_code=403)
    return Response(status_code=204, headers={**CACHING[access], "ETag": f'"{music_id}"'})


def _not_modified(request: Request, etag: str, headers: dict) -> Response | None:
    """304 when the client already holds this exact object (If-None-Match, weak or strong, or *)."""
    wanted = request.headers.get("if-none-match")
    if not wanted:
        return None
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    if "*" in tags or etag in tags:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return None


async def _presigned(request: Request, store, settings, key: str) -> Response | None:
    """With S3 storage and `s3_presign_media`, GETs are sent to the bucket itself (ranges included)."""
    if request.method != "GET" or not settings.s3_presign_media or not hasattr(store, "presigned_url"):
        return None
    url = await store.presigned_url(key)
    return Response(status_code=307, headers={"Location": url, "Cache-Control": "private, max-age=600"})


def _accelerated(request: Request, settings, key: str, headers: dict) -> Response | None:
    """With `media_accel_prefix`, a GET is handed to the nginx in front (X-Accel-Redirect): the API checks and
    counts, nginx sends the bytes (ranges included) from the same directory."""
    if request.method != "GET" or not settings.media_accel_prefix:
        return None
    return Response(status_code=200, headers={**headers, "X-Accel-Redirect": settings.media_accel_prefix + key})


def _head(status: int, length: int, media_type: str, headers: dict) -> Response:
    return Response(status_code=status, media_type=media_type, headers={**headers, "Content-Length": str(length)})


DownloadQuery = Query(False, description="1: as an attachment (Content-Disposition) named after the title and variant")
_UNSAFE_IN_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|;]+')


def attachment(title: str | None, variant: int) -> str:
    """`Content-Disposition` for a song saved to disk: an ASCII name (`frog-party-1.mp3`) for every client, and the
    title itself (RFC 6266 `filename*`) for those that read it; nothing that could name a path or break the header."""
    title = " ".join(_UNSAFE_IN_NAMES.sub(" ", title or "").split())[:80].strip(" .") or "smol"
    ascii_name = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    ascii_name = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:60].strip("-") or "smol"
    return f'attachment; filename="{ascii_name}-{variant}.mp3"; filename*=UTF-8\'\'{quote(f"{title}-{variant}.mp3")}'


async def _title_and_variant(pool, music_id: str) -> tuple[str | None, int]:
    """The song's smol's title (its row's, else the one asked for or written so far) and which of its two it is."""
    row = await pool.fetchrow(
        "SELECT title, CASE WHEN song_2 = $1 THEN 2 ELSE 1 END AS variant FROM smols WHERE song_1 = $1 OR song_2 = $1 "
        "LIMIT 1",
        music_id,
    )
    if row is not None:
        return row["title"], row["variant"]
    row = await pool.fetchrow(
        "SELECT ss.variant + 1 AS variant, coalesce(p.data->>'title', l.data->'value'->>'title') AS title "
        "FROM smol_songs ss LEFT JOIN smol_steps p ON p.smol_id = ss.smol_id AND p.step = 'payload' "
        "LEFT JOIN smol_steps l ON l.smol_id = ss.smol_id AND l.step = 'lyrics' WHERE ss.music_id = $1",
        music_id,
    )
    return (row["title"], row["variant"]) if row else (None, 1)


SONG_RESPONSES = {
    200: {"content": {"audio/mpeg": {}}, "description": "The song"},
    206: {"content": {"audio/mpeg": {}}, "description": "Partial content"},
    304: {"description": "Not modified"},
    416: {"description": "Range not satisfiable", "content": {"text/plain": {}}},
    **MEDIA_ERRORS,
}
SONG_PATH = "/song/{music_id:musicid}.mp3"


@router.head(SONG_PATH, summary="A song's headers", responses=SONG_RESPONSES, response_class=Response)
@router.get(SONG_PATH, summary="Stream an archived song (single byte ranges, ETag)", responses=SONG_RESPONSES,
            response_class=Response)  # fmt: skip
async def get_song(music_id: str, request: Request, store: StoreDep, pool: PoolDep, settings: SettingsDep,
                   viewer: ViewerDep, download: bool = DownloadQuery) -> Response:  # fmt: skip
    if request.headers.get("x-smol-access-check"):
        return await _access_check(pool, viewer, music_id)
    caching = await _access(pool, viewer, music_id=music_id)
    key = song_key(music_id)
    size = await store.size(key)
    etag = f'"{music_id}"'  # an archived song never changes under its id
    headers = {"Accept-Ranges": "bytes", **caching, "ETag": etag}
    if download:
        headers["Content-Disposition"] = attachment(*await _title_and_variant(pool, music_id))
    byte_range = parse_range(request.headers.get("range"), size)
    from_start = request.method == "GET" and (byte_range is None or byte_range[0] == 0)
    listener = tallies.listener(request, viewer)
    if from_start and tallies.claim(listener, music_id, settings.count_once_seconds):
        try:
            await repo.count_play(pool, music_id)
        except BaseException:
            tallies.release(listener, music_id)
            raise
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    if not download and (redirect := await _presigned(request, store, settings, key)) is not None:
        return redirect  # (a presigned URL would not carry the attachment's name)
    if (handed_over := _accelerated(request, settings, key, headers)) is not None:
        return handed_over
    if byte_range is None:
        if request.method == "HEAD":
            return _head(200, size, "audio/mpeg", headers)
        return Response(await store.get(key), media_type="audio/mpeg", headers=headers)
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return _head(206, end - start + 1, "audio/mpeg", headers)
    return Response(await store.read_range(key, start, end), status_code=206, media_type="audio/mpeg", headers=headers)


# Upscaling (Pillow, ~80 ms for a 32× cover here) runs beside the event loop, two at a time: on it, each stopped every
# other request of the process (outside review: /healthz from 22 ms to 100–200 ms under a dozen of them).
_UPSCALER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="upscale")


@lru_cache(maxsize=256)
def _scaled(png: bytes, scale: int) -> bytes:
    image = Image.open(io.BytesIO(png))
    resized = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    resized.save(out, format="PNG")
    return out.getvalue()


def _parse_scale(raw: str | None) -> int:
    if raw is None:
        return 1
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not 1 <= int(raw) <= 32:  # "²".isdigit() too
        raise InvalidInput("scale must be an integer from 1 to 32")
    return int(raw)


IMAGE_RESPONSES = {
    200: {"content": {"image/png": {}}, "description": "The cover"},
    304: {"description": "Not modified"},
    400: {"description": "scale outside 1–32", "content": {"text/plain": {}}},
    **MEDIA_ERRORS,
}
IMAGE_PATH = "/image/{id:smolid}.png"


@router.head(IMAGE_PATH, summary="A cover's headers", responses=IMAGE_RESPONSES, response_class=Response)
@router.get(IMAGE_PATH, summary="A smol's cover, optionally upscaled (ETag)", responses=IMAGE_RESPONSES,
            response_class=Response)  # fmt: skip
async def get_image(
    id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    pool: PoolDep,
    viewer: ViewerDep,
    scale: str | None = Query(None, description="integer 1–32"),
) -> Response:
    factor = _parse_scale(scale)
    etag = f'"{id}-x{factor}"'
    headers = {**await _access(pool, viewer, smol_id=id), "ETag": etag}
    if not await store.exists(image_key(id)):
        raise NotFound("image not found")
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    if factor == 1 and (redirect := await _presigned(request, store, settings, image_key(id))) is not None:
        return redirect
    if factor == 1 and (handed_over := _accelerated(request, settings, image_key(id), headers)) is not None:
        return handed_over
    png = await store.get(image_key(id))
    body = png if factor == 1 else await asyncio.get_running_loop().run_in_executor(_UPSCALER, _scaled, png, factor)
    if request.method == "HEAD":
        return _head(200, len(body), "image/png", headers)
    return Response(body, media_type="image/png", headers=headers)
