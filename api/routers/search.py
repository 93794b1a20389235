"""Search, "more like this", and discovery: trending, artists, stats, tags."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from api.deps import OptionalUserDep, PoolDep, pool_and_caller, same_for_everyone
from api.models import SmolList, SmolListItem
from api.openapi import READS_CALLER
from api.pagination import decode_cursor, page, parse_limit
from api.views import json_response, list_item
from smol import search

router = APIRouter(tags=["search"])
TEXT = {"content": {"text/plain": {}}}
Limit = Annotated[int, Query(ge=1, le=50, description="how many, 1–50")]


class Lyrics(BaseModel):
    title: str
    style: list[str]


class Explanation(BaseModel):
    matchedFields: list[str]
    style: list[str]
    mood: str | None
    theme: str | None


class SearchResult(SmolListItem):
    Address: str
    Username: str
    Plays: int
    Views: int
    lyrics: Lyrics
    score: float
    explanation: Explanation


class SearchResults(BaseModel):
    results: list[SearchResult]


def _result(row, fields: list[str]) -> dict:
    return {
        **list_item(row), "Address": row["address"], "Username": row["username"], "Plays": row["plays"],
        "Views": row["views"], "lyrics": {"title": row["title"], "style": list(row["style"])},
        "score": round(float(row["score"]), 4),
        "explanation": {"matchedFields": fields, "style": list(row["matched_style"]), "mood": row["mood"],
                        "theme": row["theme"]},
    }  # fmt: skip


def _viewer(user) -> str | None:
    return user.address if user else None


# (/search and /similar, asked with a query of their own each time, ask for the pool and the caller themselves and
# write their answer unvalidated, as GET / does: api/views.py json_response)
@router.get("/search", response_model=SearchResults, summary="Smols matching a text, best first",
            responses={400: {"description": "Empty q", **TEXT}}, openapi_extra=READS_CALLER)  # fmt: skip
async def search_smols(
    request: Request,
    q: Annotated[str, Query(max_length=search.MAX_QUERY, json_schema_extra={"pattern": r"[^\s\x00]"},
                            description='words (stemmed), "a phrase", or, -not; the last word may be a prefix')],
    limit: Limit = 20,
    instrumental: bool | None = None,
) -> Response:  # fmt: skip
    pool, user = await pool_and_caller(request, search=True)
    rows = await search.search(pool, q, _viewer(user), limit, instrumental)
    return json_response({"results": [_result(row, search.matched_fields(row)) for row in rows]}, {})


@router.get("/search/{id:smolid}/similar", response_model=SearchResults, summary="Smols that sound and read alike",
            responses={404: {"description": "No such smol, or one the caller may not see", **TEXT},
                       409: {"description": "The smol is not indexed yet", **TEXT}},
            openapi_extra=READS_CALLER)  # fmt: skip
async def similar_smols(
    id: str,
    request: Request,
    refine: Annotated[str | None, Query(max_length=200, description='re-ranks: "more upbeat", "with piano"')] = None,
    limit: Limit = 20,
) -> Response:
    pool, user = await pool_and_caller(request)
    rows = await search.similar(pool, id, _viewer(user), limit, refine)
    fields = lambda row: (["style"] if row["matched_style"] else []) + search.matched_fields(row)  # noqa: E731
    return json_response({"results": [_result(row, list(dict.fromkeys(fields(row)))) for row in rows]}, {})


class TrendingSmol(SmolListItem):
    Address: str
    Plays: int
    Views: int
    Likes: int
    score: int


class Trending(BaseModel):
    smols: list[TrendingSmol]


@router.get("/trending", response_model=Trending, summary="Smols by plays + views + 10 × likes in the period")
async def trending(pool: PoolDep, user: OptionalUserDep, period: Literal["day", "week", "month", "all"] = "week",
                   limit: Limit = 20):  # fmt: skip
    rows = await search.trending(pool, period, _viewer(user), limit)
    return {"smols": [
        {**list_item(r), "Address": r["address"], "Plays": r["period_plays"], "Views": r["period_views"],
         "Likes": r["likes"], "score": r["score"]}
        for r in rows
    ]}  # fmt: skip


class Artist(BaseModel):
    Address: str
    Username: str
    Smols: int
    Plays: int


class Artists(BaseModel):
    artists: list[Artist]


@router.get("/artists", response_model=Artists, summary="Creators of public smols, by plays",
            dependencies=[Depends(same_for_everyone)])
async def artists(pool: PoolDep, response: Response, limit: Annotated[int, Query(ge=1, le=100)] = 20):
    response.headers["Cache-Control"] = "public, max-age=30"
    rows = await search.artists(pool, limit)
    return {"artists": [{"Address": r["address"], "Username": r["username"], "Smols": r["smols"],
                         "Plays": r["plays"]} for r in rows]}  # fmt: skip


class Stats(BaseModel):
    smols: int
    public: int
    plays: int
    likes: int
    users: int
    minted: int


@router.get("/stats", response_model=Stats, summary="Counts: smols, public smols, plays, likes, users, minted",
            dependencies=[Depends(same_for_everyone)])
async def stats(pool: PoolDep, response: Response):
    response.headers["Cache-Control"] = "public, max-age=30"
    return await search.stats(pool)


@router.get("/tags/{tag}", response_model=SmolList, summary="Smols with a style tag, newest first (paged)")
async def tagged(
    tag: Annotated[str, Path(max_length=100)],
    pool: PoolDep,
    user: OptionalUserDep,
    limit: str | None = Query(None, description="page size, 1–100 (default 50)"),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
):
    size = parse_limit(limit)
    rows = await search.list_by_tag(pool, tag, _viewer(user), size + 1, decode_cursor(cursor))
    result = page(rows, size, list_item)
    return {"smols": result["items"], "pagination": result["pagination"]}
