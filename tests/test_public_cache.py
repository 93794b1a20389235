"""Anonymous public reads (the list, search, stats, …) answered from memory (api/public_cache.py), on an API
process of its own with the cache on (the shared test API has it off: other tests change smols behind its back)."""

import asyncio
import secrets

import httpx
import pytest_asyncio
from fastapi import FastAPI

from api import public_cache
from api.deps import COOKIE, OptionalUserDep
from api.public_cache import PublicReadCache
from smol.settings import Settings
from smol.store import FileStore
from smol.tokens import issue_token
from tests.support import OTHER, OWNER, _stop, insert_smol
from tests.support_search import Seed, index, insert

SECONDS = 3


ORIGIN = "https://smol.example"


@pytest_asyncio.fixture
async def cached(stack):
    api, url = stack.start_api(public_list_cache_seconds=SECONDS, cors_origins=f'["{ORIGIN}"]')
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
    assert await newest(cached, headers={"Cookie": "theme=dark; _ga=GA1.2.3"}) == before  # other cookies: kept
    # The public list is the same for everyone: a signed-in caller gets the copy too, once their credentials pass.
    assert await newest(cached, headers=stack.auth(OTHER)) == before
    session = f"theme=dark; {COOKIE}={stack.token(OTHER)}"
    assert await newest(cached, headers={"Cookie": session}) == before
    assert (await cached.get("/", params={"limit": 40}, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await cached.get("/", params={"limit": 40}, headers={"X-API-Key": "smol_sk_nope"})).status_code == 401
    ended = issue_token(stack.settings, OTHER, key="a-passkey-no-longer-bound")  # (a signed token, session over)
    refused = await cached.get("/", params={"limit": 40}, headers={"Authorization": f"Bearer {ended}"})
    assert refused.status_code == 401 and "ended" in refused.text
    assert made in await newest(cached, params={"address": OWNER})  # (another page, made afresh)
    await asyncio.sleep(SECONDS + 0.5)
    assert made not in await newest(cached)  # due: this caller still gets the copy, while it is made afresh
    for _ in range(40):  # (the copy made in the background replaces it)
        if made in await newest(cached):
            break
        await asyncio.sleep(0.05)
    assert made in await newest(cached)
    later = (await insert_smol(pool, OWNER))["id"]
    await asyncio.sleep(2 * SECONDS + 0.5)
    assert later in await newest(cached)  # too old to serve at all: made while its caller waits


async def test_an_answer_made_for_a_caller_with_credentials_is_never_kept(cached, pool, stack, tmp_path):
    """The owner's own view (their private smols included) is made for them alone: the same address asked for
    anonymously right after, by path and query alike, answers what anyone may see."""
    store, word = FileStore(tmp_path), f"mine{secrets.token_hex(4)}"
    hidden = (await insert_smol(pool, OWNER, kind="private"))["id"]
    assert hidden in await newest(cached, params={"address": OWNER}, headers=stack.auth(OWNER))
    assert hidden not in await newest(cached, params={"address": OWNER})
    private = await insert(pool, store, Seed(title=f"{word} song", style=["jazz"], songs=False, address=OWNER,
                                             public=False))  # fmt: skip
    await index(pool, store, private)
    mine = await cached.get("/search", params={"q": word}, headers={"Cookie": f"{COOKIE}={stack.token(OWNER)}"})
    assert [r["Id"] for r in mine.json()["results"]] == [private]
    assert (await cached.get("/search", params={"q": word})).json()["results"] == []


async def test_a_write_that_changes_what_anyone_sees_clears_it_and_a_like_does_not(cached, pool, stack):
    """The owner's visibility toggle and delete empty the memory; likes (a stream of them from anyone signed in
    would otherwise keep it empty) do not."""
    mine = (await insert_smol(pool, OWNER))["id"]
    assert mine in await newest(cached)
    shown = (await insert_smol(pool, OWNER))["id"]  # behind the API's back
    assert shown not in await newest(cached)
    assert (await cached.put(f"/likes/{shown}", headers=stack.auth(OTHER))).status_code == 204
    assert shown not in await newest(cached)  # a like: still the copy
    assert (await cached.put(f"/{mine}", headers=stack.auth(OWNER))).status_code == 204  # made private
    listed = await newest(cached)
    assert shown in listed and mine not in listed
    later = (await insert_smol(pool, OWNER))["id"]
    assert later not in await newest(cached)
    assert (await cached.delete(f"/{mine}", headers=stack.auth(OWNER))).status_code == 204
    assert later in await newest(cached)


async def test_answers_from_memory_are_counted_in_the_metrics(cached, pool):
    def answered(metrics: str) -> float:
        line = 'smol_api_requests_total{method="GET",route="/",status="200"}'
        return sum(float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line))

    first = await newest(cached)
    before = answered((await cached.get("/metrics")).text)
    made = (await insert_smol(pool, OWNER))["id"]
    for _ in range(3):
        assert await newest(cached) == first and made not in first  # (from memory)
    assert answered((await cached.get("/metrics")).text) == before + 3


async def test_search_and_discovery_are_kept_for_anonymous_callers_only(cached, pool, stack, tmp_path):
    store, word = FileStore(tmp_path), f"kept{secrets.token_hex(4)}"

    async def found(**request) -> list[str]:
        response = await cached.get("/search", params={"q": word}, **request)
        assert response.status_code == 200, response.text
        return [result["Id"] for result in response.json()["results"]]

    await insert_smol(pool, OWNER, kind="private")  # (OWNER owns a smol only they may see)
    smols = await cached.get("/stats")
    assert await found() == []
    made = await insert(pool, store, Seed(title=f"{word} song", style=["jazz"], songs=False, address=OWNER))
    await index(pool, store, made)  # (behind the API's back)
    assert (await cached.get("/stats")).json() == smols.json()  # kept
    assert await found() == []  # kept
    assert await found(headers=stack.auth(OWNER)) == [made]  # a caller with smols only they see: made afresh
    assert (await cached.get("/stats", headers=stack.auth(OWNER))).json() == smols.json()  # the same for everyone
    junk = await cached.get("/stats", params={"n": secrets.token_hex(4)}, headers=stack.auth(OWNER))
    assert junk.json() == smols.json()  # (a parameter /stats does not read: the same copy)
    assert (await cached.get("/search", params={"q": word, "junk": 1})).json()["results"] == []  # the same copy
    await asyncio.sleep(2 * SECONDS + 0.5)
    assert await found() == [made]  # made afresh
    assert (await cached.put(f"/likes/{made}", headers=stack.auth(OWNER))).status_code == 204
    await pool.execute("UPDATE smols SET public = false WHERE id = $1", made)
    assert await found() == [made]  # (changed behind its back, a like meanwhile: kept for the moment)
    await pool.execute("UPDATE smols SET public = true WHERE id = $1", made)
    assert (await cached.put(f"/{made}", headers=stack.auth(OWNER))).status_code == 204  # made private: clears it
    assert await found() == []
    assert (await cached.get(f"/search/{made}/similar")).status_code == 404  # a refusal is never kept
    await pool.execute("UPDATE smols SET public = true WHERE id = $1", made)
    assert (await cached.get(f"/search/{made}/similar")).status_code == 200


async def test_a_signed_in_caller_who_owns_nothing_hidden_is_answered_as_anyone(cached, pool, stack, tmp_path):
    """What anyone sees is all such a caller may see: they get the kept copy, once their credentials pass. Once a
    smol of theirs is private (through this API: a write), their answers are made for them again."""
    store, word = FileStore(tmp_path), f"seen{secrets.token_hex(4)}"
    plain = f"GPLAIN{secrets.token_hex(4).upper()}"

    async def found(**request) -> list[str]:
        response = await cached.get("/search", params={"q": word}, **request)
        assert response.status_code == 200, response.text
        return [result["Id"] for result in response.json()["results"]]

    assert await found() == []
    theirs = await insert(pool, store, Seed(title=f"{word} song", style=["jazz"], songs=False, address=plain))
    await index(pool, store, theirs)  # (behind the API's back)
    assert await found() == []  # kept
    assert await found(headers=stack.auth(plain)) == []  # the same copy
    assert await found(headers={"Cookie": f"{COOKIE}={stack.token(plain)}"}) == []
    refused = await cached.get("/search", params={"q": word}, headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert await found(headers=stack.auth(OWNER)) == [theirs]  # (OWNER owns private smols: made afresh)
    assert (await cached.put(f"/{theirs}", headers=stack.auth(plain))).status_code == 204  # now private
    assert await found(headers=stack.auth(plain)) == [theirs]  # theirs alone to see: made for them
    assert await found() == []
    await asyncio.sleep(2 * SECONDS + 0.5)
    assert await found(headers=stack.auth(plain)) == [theirs]


async def test_a_kept_answer_is_sent_as_it_was_made_whoever_asks(cached):
    """CORS headers are added per request, outside the cache: they neither pile up on the kept answer nor pass from
    one caller to the next."""
    first = await cached.get("/stats", headers={"Origin": ORIGIN})
    again = await cached.get("/stats", headers={"Origin": ORIGIN})
    stranger = await cached.get("/stats", headers={"Origin": "https://elsewhere.example"})
    plain = await cached.get("/stats")
    assert first.headers["access-control-allow-origin"] == ORIGIN and first.headers == again.headers
    assert first.headers.get_list("vary") == again.headers.get_list("vary")
    assert "access-control-allow-origin" not in stranger.headers and "access-control-allow-origin" not in plain.headers


async def test_a_refused_or_anonymous_write_keeps_what_was_kept(cached, pool):
    before = await newest(cached)
    made = (await insert_smol(pool, OWNER))["id"]
    assert (await cached.put(f"/likes/{made}")).status_code == 401  # refused: nothing changed
    assert (await cached.post("/nothing-here")).status_code in (404, 405)
    assert (await cached.post("/logout")).status_code == 204  # nobody's: no smol changed (anyone may send it)
    assert await newest(cached) == before  # still kept


async def test_a_due_answer_is_made_once_however_many_ask_at_once():
    made = []

    async def app(scope, receive, send):
        made.append(scope["path"])
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(len(made)).encode()})

    cache = PublicReadCache(app, seconds=0.2)

    async def ask() -> bytes:
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/stats", "query_string": b"", "headers": []}
        await cache(scope, None, send)
        return sent[-1]["body"]

    assert await ask() == b"1" and await ask() == b"1"
    await asyncio.sleep(0.25)  # due
    assert set(await asyncio.gather(*(ask() for _ in range(20)))) == {b"1"}  # the copy, while one makes it afresh
    await asyncio.sleep(0.1)
    assert len(made) == 2 and await ask() == b"2"


async def test_an_answer_that_sets_a_cookie_is_never_kept():
    """(No public read sets one today; if one ever does, each caller must get a cookie of its own.)"""
    made = []

    async def app(scope, receive, send):
        made.append(scope["path"])
        headers = [(b"content-type", b"text/plain"), (b"set-cookie", f"n={len(made)}".encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    cache = PublicReadCache(app, seconds=5)
    for _ in range(3):
        scope = {"type": "http", "method": "GET", "path": "/stats", "query_string": b"", "headers": []}
        await cache(scope, None, lambda message: asyncio.sleep(0))
    assert len(made) == 3


async def test_an_answer_made_for_a_known_caller_is_never_kept_whatever_credential_it_came_with(monkeypatch):
    """Defence in depth: were the cache's list of credentials to miss one the API reads, the auth dependency's mark
    still keeps the caller's answer from being served to others."""
    monkeypatch.setattr(public_cache, "CREDENTIALS", ())  # (the list misses the bearer token)
    api = FastAPI()
    api.state.settings = Settings(jwt_secret="s" * 40)

    @api.get("/stats")
    async def stats(user: OptionalUserDep) -> dict:
        return {"caller": user.address if user else None}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=PublicReadCache(api, seconds=5)),
                                 base_url="http://test") as http:  # fmt: skip
        token = issue_token(api.state.settings, OWNER)
        assert (await http.get("/stats", headers={"Authorization": f"Bearer {token}"})).json() == {"caller": OWNER}
        assert (await http.get("/stats")).json() == {"caller": None}


def counting_app(made: list):
    async def app(scope, receive, send):
        made.append((scope["path"], scope["query_string"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(len(made)).encode()})

    return app


async def ask(cache, path: str, query: bytes = b"") -> bytes:
    sent = []

    async def send(message):
        sent.append(message)

    await cache({"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}, None, send)
    return sent[-1]["body"]


async def test_pages_are_kept_by_the_parameters_their_route_reads():
    """Junk in a query neither misses the copy nor fills the memory; a repeated parameter counts as the route reads
    it (the last), and spelling does not matter."""
    made = []
    cache = PublicReadCache(counting_app(made), seconds=5)
    first = await ask(cache, "/search", b"q=frog&limit=5")
    for query in (b"limit=5&q=frog", b"q=frog&limit=5&junk=1", b"junk=2&q=fr%6Fg&limit=5", b"q=x&q=frog&limit=5"):
        assert await ask(cache, "/search", query) == first, query
    assert await ask(cache, "/search", b"q=frog&limit=6") != first  # a parameter it reads: another page
    assert await ask(cache, "/stats", b"n=1") == await ask(cache, "/stats", b"n=2")
    assert len(made) == 3 and len(cache.pages) == 3


async def test_a_full_memory_forgets_the_answers_made_longest_ago():
    """Filling the memory with pages nobody else asks for pushes out the oldest, not every page at once."""
    made = []
    cache = PublicReadCache(counting_app(made), seconds=5, pages=8)
    hot = await ask(cache, "/stats")
    for n in range(6):
        await ask(cache, "/search", b"q=w%d" % n)
    assert await ask(cache, "/stats") == hot  # 7 pages: all kept
    for n in range(6, 10):
        await ask(cache, "/search", b"q=w%d" % n)
    assert len(cache.pages) == 8 and ("/search", "q=w9") in cache.pages and ("/stats", "") not in cache.pages
    assert await ask(cache, "/search", b"q=w9") == b"11"  # (the newest is still the copy)


def test_the_kept_parameters_are_the_ones_each_route_reads():
    from api.app import app

    spec = app.openapi()["paths"]
    for pattern, names in public_cache.PATHS:
        (path,) = [path for path in spec if pattern.fullmatch(path.replace("{", "").replace("}", ""))]
        query = {p["name"] for p in spec[path]["get"].get("parameters", []) if p["in"] == "query"}
        assert query == set(names), path
