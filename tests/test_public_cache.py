"""The anonymous public list answered from memory (api/public_cache.py), on an API process of its own with the cache
on (the shared test API has it off: other tests change smols behind its back)."""

import asyncio

import httpx
import pytest_asyncio

from tests.support import OTHER, OWNER, _stop, insert_smol

SECONDS = 3


@pytest_asyncio.fixture
async def cached(stack):
    api, url = stack.start_api(public_list_cache_seconds=SECONDS)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client
    finally:
        _stop(api)


async def newest(http, **request) -> list[str]:
    """The first page of the public list (a smol made now is on it: other tests' smols may be dated later)."""
    response = await http.get("/", params={"limit": 40, **request.pop("params", {})}, **request)
    assert response.status_code == 200, response.text
    return [smol["Id"] for smol in response.json()["smols"]]


async def test_a_page_is_kept_briefly_for_anonymous_callers_only(cached, pool, stack):
    before = await newest(cached)
    made = (await insert_smol(pool, OWNER))["id"]  # behind the API's back
    assert await newest(cached) == before and made not in before  # kept
    assert made in await newest(cached, params={"limit": 41})  # another page is made afresh
    assert made in await newest(cached, headers=stack.auth(OTHER))  # a caller with credentials goes through
    assert (await cached.get("/", params={"limit": 40}, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await cached.get("/", params={"limit": 40}, headers={"X-API-Key": "smol_sk_nope"})).status_code == 401
    assert made in await newest(cached, params={"address": OWNER})  # one creator's list is never kept
    await asyncio.sleep(SECONDS + 0.5)
    assert made in await newest(cached)  # made afresh once the moment has passed


async def test_a_write_through_this_api_clears_it(cached, pool, stack):
    await newest(cached)
    hidden = (await insert_smol(pool, OWNER))["id"]
    assert hidden not in await newest(cached)
    liked = await cached.put(f"/likes/{hidden}", headers=stack.auth(OTHER))  # any request that may change something
    assert liked.status_code == 204
    assert hidden in await newest(cached)
    await pool.execute("UPDATE smols SET public = false WHERE id = $1", hidden)
    assert hidden in await newest(cached)  # (changed behind its back: kept for the moment)
    assert (await cached.put(f"/likes/{hidden}", headers=stack.auth(OWNER))).status_code == 204
    assert hidden not in await newest(cached)


async def test_answers_from_memory_are_counted_in_the_metrics(cached):
    def answered(metrics: str) -> float:
        line = 'smol_api_requests_total{method="GET",route="/",status="200"}'
        return sum(float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line))

    before = answered((await cached.get("/metrics")).text)
    for _ in range(3):
        await newest(cached)
    assert answered((await cached.get("/metrics")).text) == before + 3
