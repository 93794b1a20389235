"""Songs with HTTP ranges, covers with nearest-neighbour scaling."""

import io
import re
from functools import lru_cache

from fastapi import APIRouter, Query, Request, Response
from PIL import Image

from api.deps import PoolDep, StoreDep
from smol import repo
from smol.errors import InvalidInput, NotFound, RangeNotSatisfiable
from smol.ids import image_key, song_key

router = APIRouter(tags=["media"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MEDIA_ERRORS = {404: {"description": "Unknown id", "content": {"text/plain": {}}}}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive of a single `bytes=` range; None to send the whole file; 416 if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # not a single byte range we understand: RFC 9110 lets us ignore it
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(size)
    return start, end


@router.api_route(
    "/song/{music_id:musicid}.mp3",
    methods=["GET"],
    summary="Stream an archived song (single byte ranges supported)",
    responses={206: {"description": "Partial content"}, 416: {"description": "Range not satisfiable"}, **MEDIA_ERRORS},
    response_class=Response,
)
async def get_song(music_id: str, request: Request, store: StoreDep, pool: PoolDep) -> Response:
    key = song_key(music_id)
    size = await store.size(key)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "public, max-age=31536000, immutable"}
    byte_range = parse_range(request.headers.get("range"), size)
    if byte_range is None or byte_range[0] == 0:
        await repo.count_play(pool, music_id)
    if byte_range is None:
        return Response(await store.get(key), media_type="audio/mpeg", headers=headers)
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(await store.read_range(key, start, end), status_code=206, media_type="audio/mpeg", headers=headers)


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
    if not raw.isdigit() or not 1 <= int(raw) <= 32:
        raise InvalidInput("scale must be an integer from 1 to 32")
    return int(raw)


@router.get(
    "/image/{id:smolid}.png",
    summary="A smol's cover, optionally upscaled",
    responses={400: {"description": "scale outside 1–32"}, **MEDIA_ERRORS},
    response_class=Response,
)
async def get_image(id: str, store: StoreDep, scale: str | None = Query(None, description="integer 1–32")) -> Response:
    factor = _parse_scale(scale)
    try:
        png = await store.get(image_key(id))
    except InvalidInput:
        raise NotFound("image not found") from None
    body = png if factor == 1 else _scaled(png, factor)
    return Response(body, media_type="image/png", headers={"Cache-Control": "public, max-age=31536000, immutable"})
