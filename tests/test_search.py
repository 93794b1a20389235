"""Search, "more like this" and discovery against the real stack: smols inserted as the pipeline leaves them, songs
synthesised by the local provider, the index activities run on them, and every route asked over HTTP."""

import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from smol import repo, search
from smol.store import open_store
from tests.support_search import Seed, index, insert

OWNER = "GSEARCHOWNER" + secrets.token_hex(4).upper()
STRANGER = "GSEARCHSTRANGER"
SMOL = str(Path(sys.executable).parent / "smol")


@pytest_asyncio.fixture(scope="module")
async def store(stack):
    store = open_store(stack.settings)
    yield store
    await store.close()


def word() -> str:
    """A made-up word no other test's smol contains."""
    return "zq" + "".join(secrets.choice("bcdfghjklmnprstvwxyz") + secrets.choice("aeiou") for _ in range(4))


async def seeded(pool, store, *seeds: Seed, indexed: bool = True) -> list[str]:
    ids = []
    for seed in seeds:
        ids.append(await insert(pool, store, seed))
        if indexed:
            assert await index(pool, store, ids[-1])
    return ids


async def found(http, q: str, address: str | None = None, stack=None, **params) -> list[dict]:
    headers = stack.auth(address) if address else {}
    response = await http.get("/search", params={"q": q, "limit": 50, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def ids_of(results: list[dict]) -> list[str]:
    return [r["Id"] for r in results]


async def test_title_outranks_lyrics_and_the_explanation_says_why(pool, store, http):
    term = word()
    in_lyrics, in_title, in_style = await seeded(
        pool, store,
        Seed(title="Quiet Harbour", style=["folk", "calm"], lyrics=f"the {term} sleeps by the sea " * 3),
        Seed(title=f"The {term} Parade", style=["pop", "happy"], lyrics="we march along the road"),
        Seed(title="Night Drive", style=["synthwave", term], lyrics="neon lights"),
    )  # fmt: skip
    results = await found(http, term)
    assert ids_of(results) == [in_title, in_style, in_lyrics]
    first, second, last = results
    assert first["explanation"]["matchedFields"] == ["title"] and last["explanation"]["matchedFields"] == ["lyrics"]
    assert second["explanation"]["style"] == [term] and second["lyrics"]["style"] == ["synthwave", term]
    assert first["explanation"]["mood"] == "upbeat" and last["explanation"]["mood"] == "chill"
    assert last["explanation"]["theme"] == "nature"
    assert first["Address"] == "GSEARCHOWNER" and first["Plays"] == 0 and first["Title"] == f"The {term} Parade"
    assert first["score"] > second["score"] > last["score"] > 0


async def test_stemming_prefix_and_typos(pool, store, http):
    base = word()  # e.g. "zqbalumiso": forms of it below stem alike
    (smol_id,) = await seeded(pool, store, Seed(title=f"Dancing {base}s", style=["house", "upbeat"],
                                                lyrics=f"marmots dancing in the meadow with the {base}"))  # fmt: skip
    assert ids_of(await found(http, "marmot")) == [smol_id]  # stemming: "marmots" in the lyrics
    assert smol_id in ids_of(await found(http, "dances"))
    assert ids_of(await found(http, base[:5])) == [smol_id]  # a prefix while typing
    assert ids_of(await found(http, f"house {base[:6]}")) == [smol_id]
    assert await found(http, base[:5] + " ") == []  # a finished word is a word, not a prefix
    typo = base[:3] + base[4] + base[3] + base[5:]  # two letters swapped
    exact, fuzzy = (await found(http, base))[0], await found(http, typo)
    assert ids_of(fuzzy) == [smol_id] and 0 < fuzzy[0]["score"] < exact["score"]  # found, ranked below the exact word
    assert ids_of(await found(http, base[:-1] + "x")) == [smol_id]  # one letter wrong
    assert await found(http, base[:-3] + "xxx") == []  # too far: no guess


async def test_words_of_a_query_may_match_in_different_fields(pool, store, http):
    """Every word must match somewhere; the score adds up where each did (a title word outweighs a lyrics word)."""
    first, second, absent = word(), word(), word()
    both_in_title, split, one_only = await seeded(
        pool, store,
        Seed(title=f"{first} {second}", style=["pop"], songs=False),
        Seed(title=f"{first} parade", style=["pop"], lyrics=f"and the {second} came too", songs=False),
        Seed(title=f"{first} alone", style=["pop"], songs=False),
    )  # fmt: skip
    results = await found(http, f"{first} {second} ")
    assert ids_of(results) == [both_in_title, split]
    assert results[1]["explanation"]["matchedFields"] == ["title", "lyrics"]
    assert one_only not in ids_of(await found(http, f"{first} {absent} "))
    assert ids_of(await found(http, f"{first} -{second}")) == [one_only]  # a negated last word is not a prefix


async def test_both_ways_of_answering_several_words_agree(pool, store, monkeypatch):
    """A query of several words is answered by joining every match or by sampling the rarest word's best matches,
    whichever costs less; on the same smols both give the same ranking."""
    common, rare = word(), word()
    seeds = [Seed(title=f"{common} {n}", style=["pop"], lyrics=f"{rare} " * (n % 3) if n % 2 else "la la",
                  description=rare if n % 5 == 0 else "", public=n % 7 != 0, songs=False)
             for n in range(24)]  # fmt: skip
    await seeded(pool, store, *seeds)
    answers = []
    for read_all in (True, False):
        monkeypatch.setattr(search, "_read_all_is_cheaper", lambda held, indexed, answer=read_all: answer)
        rows = await search.search(pool, f"{common} {rare}", None, 20)
        answers.append([(row["id"], round(row["score"], 4)) for row in rows])
    assert answers[0] == answers[1] and len(answers[0]) == 10  # the public ones holding the rare word


async def test_a_repeated_word_is_asked_once_and_many_words_find_the_smols_holding_all(pool, store, http,
                                                                                        monkeypatch):  # fmt: skip
    """Queries of more words than the postings serve well go to the GIN indexes: the same smols match either way.
    ("sky" 29 times had made a join of 29 tables: 2 s of planning and work.)"""
    words = [word() for _ in range(4)]
    every, three, two = await seeded(
        pool, store,
        Seed(title=f"{words[0]} {words[1]}", style=["pop"], lyrics=f"{words[2]} and {words[3]}", songs=False),
        Seed(title=f"{words[0]} {words[1]}", style=["pop"], lyrics=f"only {words[2]}", songs=False),
        Seed(title=f"{words[0]} {words[1]}", style=["pop"], songs=False),
    )  # fmt: skip
    async with pool.acquire() as conn:
        asked = await search._words(conn, f"{words[0]} " * 29, None, None)
    assert len(asked.slots) == 1
    assert await found(http, f"{words[0]} " * 18) == await found(http, f"{words[0]} ")  # (200 characters at most)
    for postings_slots in (search.POSTINGS_SLOTS, 4):  # (GIN indexes, then postings)
        monkeypatch.setattr(search, "POSTINGS_SLOTS", postings_slots)
        assert set(ids_of(await found(http, " ".join(words[:3]) + " "))) == {every, three}, postings_slots
        assert ids_of(await found(http, " ".join(words) + " ")) == [every], postings_slots
        assert set(ids_of(await found(http, " ".join(words[:2]) + " "))) == {every, three, two}, postings_slots


async def test_the_index_counts_each_word_once_per_smol(pool, store):
    """Re-indexing a smol (a visibility change does) neither duplicates its words nor counts them twice."""
    word_ = word()
    term = await pool.fetchval("SELECT lexeme FROM unnest(to_tsvector('english', $1))", word_)  # (stemmed)
    (smol_id,) = await seeded(pool, store, Seed(title=f"{word_} {word_}", style=["pop"], songs=False))
    assert await pool.fetchval("SELECT smols FROM search_lexemes WHERE lexeme = $1", term) == 1
    assert await index(pool, store, smol_id)
    assert await pool.fetchval("SELECT smols FROM search_lexemes WHERE lexeme = $1", term) == 1
    impact = await pool.fetchval("SELECT impact FROM search_postings WHERE smol_id = $1 AND lexeme = $2",
                                 smol_id, term)  # fmt: skip
    assert impact == pytest.approx(1.5)  # a title word twice: 1.0 × (2 - 1/2)
    await repo.delete_smol(pool, smol_id)
    assert await pool.fetchval("SELECT count(*) FROM search_postings WHERE smol_id = $1", smol_id) == 0


async def test_instrumental_filter_and_bad_queries(pool, store, http):
    term = word()
    sung, instrumental = await seeded(
        pool, store, Seed(title=f"{term} song", style=["pop", "happy"], lyrics="la la la"),
        Seed(title=f"{term} tune", style=["ambient", "calm"], instrumental=True, songs=False),
    )  # fmt: skip
    assert set(ids_of(await found(http, term))) == {sung, instrumental}
    assert ids_of(await found(http, term, instrumental="true")) == [instrumental]
    assert ids_of(await found(http, term, instrumental="false")) == [sung]
    assert len(await found(http, term, limit=1)) == 1
    for params in ({"q": ""}, {"q": "   "}):
        assert (await http.get("/search", params=params)).status_code == 400
    for params in ({}, {"q": term, "limit": 0}, {"q": term, "limit": 51}, {"q": "x" * 201}):
        assert (await http.get("/search", params=params)).status_code == 422
    for q in ['"', "-", "a & b | !c", "'", "fro:*", "\\", "or or", "😀", "-" + term]:
        assert (await http.get("/search", params={"q": q})).status_code == 200, q
    assert (await http.get("/search", params={"q": "\x00"})).status_code == 400
    assert (await http.get("/search", params={"q": f"\x00{term}"})).json()["results"]
    assert (await http.get("/tags/a%00b")).json()["smols"] == []


async def test_similar_prefers_genre_and_tempo_over_a_shared_word(pool, store, http):
    term = word()
    target, same_sound, same_word, other = await seeded(
        pool, store,
        Seed(title="Neon Nights", style=["house", "upbeat"], lyrics=f"the {term} glows on the dance floor"),
        Seed(title="Club Lights", style=["house", "upbeat"], lyrics="move your feet until the morning"),
        Seed(title="Slow Tide", style=["ambient", "calm"], lyrics=f"a {term} drifts across the water"),
        Seed(title="Rust and Bone", style=["metal", "dark"], lyrics="iron storms and broken chains"),
    )  # fmt: skip
    response = await http.get(f"/search/{target}/similar", params={"limit": 50})
    assert response.status_code == 200, response.text
    ranked = ids_of(response.json()["results"])
    assert target not in ranked and same_sound in ranked

    def rank(ids: list[str], smol_id: str) -> int:  # past the page counts as last: other tests' smols are indexed too
        return ids.index(smol_id) if smol_id in ids else len(ids)

    assert rank(ranked, same_sound) < rank(ranked, same_word) and rank(ranked, same_sound) < rank(ranked, other)
    best = response.json()["results"][ranked.index(same_sound)]
    assert best["explanation"]["style"] == ["house", "upbeat"] and "style" in best["explanation"]["matchedFields"]
    refined = await http.get(f"/search/{target}/similar", params={"limit": 50, "refine": "calm ambient water"})
    reranked = ids_of(refined.json()["results"])
    assert same_word in reranked and rank(reranked, same_word) < rank(ranked, same_word)  # refine moved it up
    assert "lyrics" in refined.json()["results"][reranked.index(same_word)]["explanation"]["matchedFields"]
    assert len((await http.get(f"/search/{target}/similar", params={"limit": 1})).json()["results"]) == 1
    for refine in ["", "'", "a|b", "!", "½ ª", "or or", "the", "\x00", "über piano", "x" * 200]:
        response = await http.get(f"/search/{target}/similar", params={"refine": refine})
        assert response.status_code == 200 and response.json()["results"], refine


async def test_similar_is_409_before_indexing_and_404_when_unknown_or_invisible(pool, store, http, stack):
    (waiting,) = await seeded(pool, store, Seed(title="Not Yet", style=["folk", "calm"]), indexed=False)
    (private,) = await seeded(pool, store, Seed(title="Mine", style=["folk", "calm"], address=OWNER, public=False))
    assert (await http.get(f"/search/{waiting}/similar")).status_code == 409
    assert (await http.get(f"/search/{secrets.token_hex(32)}/similar")).status_code == 404
    assert (await http.get(f"/search/{private}/similar")).status_code == 404
    assert (await http.get(f"/search/{private}/similar", headers=stack.auth(STRANGER))).status_code == 404
    assert (await http.get(f"/search/{private}/similar", headers=stack.auth(OWNER))).status_code == 200
    assert await index(pool, store, waiting)
    assert (await http.get(f"/search/{waiting}/similar")).status_code == 200


async def test_private_unsafe_and_deleted_smols_are_shown_to_their_owner_only(pool, store, http, stack):
    term = word()
    seeds = [Seed(title=f"{term} {kind}", style=["lofi", term], address=OWNER, public=kind != "private",
                  safe=kind != "unsafe") for kind in ("public", "private", "unsafe", "deleted")]  # fmt: skip
    shown, private, unsafe, deleted = mine = await seeded(pool, store, *seeds)
    await pool.execute("UPDATE smols SET plays = 100000 WHERE id = $1", shown)  # first among /artists
    for smol_id in (shown, private, unsafe, deleted):
        await pool.execute("INSERT INTO likes (id, address) VALUES ($1, $2)", smol_id, STRANGER)
    await repo.delete_smol(pool, deleted)
    assert await pool.fetchval("SELECT count(*) FROM smol_search WHERE smol_id = $1", deleted) == 0  # cascade
    assert await pool.fetchval("SELECT count(*) FROM smol_vectors WHERE smol_id = $1", deleted) == 0

    async def seen(address: str | None) -> dict[str, set[str]]:
        headers = stack.auth(address) if address else {}
        get = lambda path, **params: http.get(path, params=params, headers=headers)  # noqa: E731
        similar = (await get(f"/search/{shown}/similar", limit=50)).json()["results"]
        trending = (await get("/trending", period="day", limit=50)).json()["smols"]
        tagged = (await get(f"/tags/{term.upper()}")).json()["smols"]
        creator = await search.list_by_creator(pool, OWNER, 50, viewer=address)
        return {
            "search": set(ids_of(await found(http, term, address, stack))),
            "similar": set(ids_of(similar)) & set(mine) | {shown},
            "trending": {s["Id"] for s in trending} & set(mine),
            "tags": {s["Id"] for s in tagged},
            "creator": {r["id"] for r in creator} & set(mine),
        }

    for viewer in (None, STRANGER):
        assert await seen(viewer) == dict.fromkeys(["search", "similar", "trending", "tags", "creator"], {shown})
    assert await seen(OWNER) == dict.fromkeys(["search", "similar", "trending", "tags", "creator"],
                                              {shown, private, unsafe})  # fmt: skip
    artists = (await http.get("/artists", params={"limit": 100})).json()["artists"]
    assert {"Address": OWNER, "Username": "", "Smols": 1, "Plays": 100000} in artists
    await pool.execute("UPDATE smols SET public = NOT public WHERE id = $1", private)  # no re-index needed
    assert shown in ids_of(await found(http, term)) and private in ids_of(await found(http, term))


async def test_words_nobody_may_see_before_the_index_was_ever_analyzed(pool, store, http, stack):
    """A new deployment: Postgres has not yet counted the indexed smols (reltuples -1). Two words that only a private
    smol holds, asked by a signed-in caller, are 200 with nothing for a stranger and the smol for its owner."""
    a, b = word(), word()
    mine = (await seeded(pool, store, Seed(title=f"{a} {b}", style=["pop"], address=OWNER, public=False,
                                           songs=False)))[0]  # fmt: skip
    counted = await pool.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'smol_search'::regclass")
    await pool.execute("UPDATE pg_class SET reltuples = -1 WHERE oid = 'smol_search'::regclass")
    try:
        assert await found(http, f"{a} {b}", STRANGER, stack) == []
        assert ids_of(await found(http, f"{a} {b}", OWNER, stack)) == [mine]
    finally:
        await pool.execute("UPDATE pg_class SET reltuples = $1 WHERE oid = 'smol_search'::regclass", counted)


async def test_typo_correction_never_reveals_words_of_smols_others_cannot_see(pool, store, http, stack):
    """A word only private, unsafe or deleted smols contain is unknown to everyone else: a stranger's query for it is
    corrected to the nearest visible word, exactly as if those smols did not exist."""
    shown = {kind: word() for kind in ("private", "unsafe", "deleted")}
    hidden = {kind: w[:-1] + ("a" if w[-1] != "a" else "e") for kind, w in shown.items()}  # one edit away
    public = await seeded(pool, store, *[Seed(title=f"{w} song", style=["pop"], songs=False) for w in shown.values()])
    private, unsafe, deleted = await seeded(
        pool, store,
        Seed(title="mine", style=["pop"], lyrics=f"the {hidden['private']} in me", address=OWNER, public=False,
             songs=False),
        Seed(title="flagged", style=["pop"], lyrics=f"the {hidden['unsafe']} in me", address=OWNER, safe=False,
             songs=False),
        Seed(title="gone", style=["pop"], lyrics=f"the {hidden['deleted']} in me", address=OWNER, songs=False),
    )  # fmt: skip
    await repo.delete_smol(pool, deleted)
    for (kind, q), expected in zip(hidden.items(), public, strict=True):
        for viewer in (None, STRANGER):
            assert ids_of(await found(http, q + " ", viewer, stack)) == [expected], (kind, viewer)
    assert ids_of(await found(http, hidden["private"] + " ", OWNER, stack))[0] == private  # the owner's own word
    assert ids_of(await found(http, hidden["unsafe"] + " ", OWNER, stack))[0] == unsafe


async def test_completions_never_reveal_words_of_smols_others_cannot_see(pool, store, http, stack):
    """The words a prefix completes to are the most common among smols anyone may see: a hidden smol neither offers a
    word of its own nor, by holding a visible one, pushes another out (either would tell a stranger what it holds)."""
    prefix = word()[:6]
    visible = [f"{prefix}{chr(ord('b') + n)}x" for n in range(search.COMPLETIONS + 1)]  # (one more than offered)
    await seeded(pool, store, *[Seed(title=f"{w} song", style=["pop"], songs=False) for w in visible])
    before = {viewer: ids_of(await found(http, prefix, viewer, stack)) for viewer in (None, STRANGER)}
    assert len(before[None]) == search.COMPLETIONS  # the commonest, then in word order: the last one left out
    hidden = f"{prefix}ax"  # (first in word order)
    holding = f"{hidden} {visible[-1]}"
    private, _, deleted = await seeded(
        pool, store,
        Seed(title=holding, style=["pop"], lyrics=holding, address=OWNER, public=False, songs=False),
        Seed(title=holding, style=["pop"], lyrics=holding, address=OWNER, safe=False, songs=False),
        Seed(title=holding, style=["pop"], lyrics=holding, address=OWNER, songs=False),
    )  # fmt: skip
    await repo.delete_smol(pool, deleted)
    for viewer in (None, STRANGER):
        assert ids_of(await found(http, prefix, viewer, stack)) == before[viewer], viewer
    assert private in ids_of(await found(http, hidden, OWNER, stack))  # the owner's own word finds their smol


async def test_the_count_of_smols_holding_a_word_follows_who_may_see_them(pool, store):
    """(what completions are ranked by: schema/015)"""
    word_ = word()
    term = await pool.fetchval("SELECT lexeme FROM unnest(to_tsvector('english', $1))", word_)

    async def count() -> int | None:
        return await pool.fetchval("SELECT smols FROM search_lexemes WHERE lexeme = $1", term)

    (hidden,) = await seeded(pool, store, Seed(title=word_, style=["pop"], public=False, songs=False))
    assert await count() == 0  # (known, held by no smol anyone may see)
    (shown,) = await seeded(pool, store, Seed(title=word_, style=["pop"], songs=False))
    assert await count() == 1
    assert await repo.toggle_public(pool, hidden, "GSEARCHOWNER") is True and await count() == 2
    assert await repo.toggle_public(pool, shown, "GSEARCHOWNER") is False and await count() == 1
    await pool.execute("UPDATE smols SET safe = false WHERE id = $1", hidden)  # (flagged)
    assert await count() == 0
    assert await index(pool, store, hidden) and await count() == 0  # (indexed again: still hidden)
    await pool.execute("UPDATE smols SET safe = true, public = true WHERE id = ANY($1)", [hidden, shown])
    assert await count() == 2
    await repo.delete_smol(pool, shown)
    assert await count() == 1


async def test_trending_counts_plays_views_and_likes_within_the_period(pool, store, http):
    term = word()
    a, b, c = await seeded(pool, store, *[Seed(title=f"{term} {n}", style=["pop", "happy"], songs=False)
                                          for n in "abc"])  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    old = lambda days: (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)  # noqa: E731
    song_of_a = await pool.fetchval("SELECT song_1 FROM smols WHERE id = $1", a)
    for _ in range(3):
        await repo.count_play(pool, song_of_a)  # recorded this hour by the trigger
    await repo.smol_page(pool, a, None, count_view=True)
    # b: a burst 3 days ago; c: 20 days ago, and liked 2 days ago
    await pool.execute("UPDATE smols SET plays = 40, views = 10 WHERE id = $1", b)
    await pool.execute("UPDATE smol_counts SET hour = $2 WHERE smol_id = $1", b, old(3))
    await pool.execute("UPDATE smols SET plays = 100 WHERE id = $1", c)
    await pool.execute("UPDATE smol_counts SET hour = $2 WHERE smol_id = $1", c, old(20))
    await pool.execute("INSERT INTO likes (id, address, created_at) VALUES ($1, 'GFAN', $2)", c, old(2))

    async def ranking(period: str) -> list[tuple[str, int]]:
        response = await http.get("/trending", params={"period": period, "limit": 50})
        assert response.status_code == 200, response.text
        return [(s["Id"], s["score"]) for s in response.json()["smols"] if s["Id"] in (a, b, c)]

    assert await ranking("day") == [(a, 4)]
    assert await ranking("week") == [(b, 50), (c, 10), (a, 4)]
    assert await ranking("month") == [(c, 110), (b, 50), (a, 4)]
    assert await ranking("all") == [(c, 110), (b, 50), (a, 4)]
    week = (await http.get("/trending", params={"period": "week", "limit": 50})).json()["smols"]
    (liked,) = [s for s in week if s["Id"] == c]
    assert (liked["Plays"], liked["Views"], liked["Likes"], liked["Address"]) == (0, 0, 1, "GSEARCHOWNER")
    assert (await http.get("/trending", params={"period": "year"})).status_code == 422


async def test_stats_tags_paging_and_creator(pool, store, http):
    before = (await http.get("/stats")).json()
    term = word()
    address = "GSEARCHTAGS" + secrets.token_hex(3).upper()
    ids = await seeded(pool, store, *[Seed(title=f"tagged {n}", style=["chiptune", term], address=address,
                                           songs=False) for n in range(3)])  # fmt: skip
    await pool.execute("UPDATE smols SET created_at = created_at - make_interval(secs => $2) WHERE id = $1", ids[0], 5)
    (private,) = await seeded(pool, store, Seed(title="hidden", style=["chiptune"], address=address, public=False,
                                                songs=False))  # fmt: skip
    await pool.execute("UPDATE smols SET plays = 50 WHERE id = $1", private)
    await pool.execute("INSERT INTO likes (id, address) VALUES ($1, $2)", private, STRANGER)
    stats = (await http.get("/stats")).json()
    assert stats["smols"] == before["smols"] + 4 and stats["public"] == before["public"] + 3
    assert (stats["plays"], stats["likes"]) == (before["plays"], before["likes"])  # a private smol's activity
    assert set(stats) == {"smols", "public", "plays", "likes", "users", "minted"}
    first = (await http.get(f"/tags/{term}", params={"limit": 2})).json()
    assert len(first["smols"]) == 2 and first["pagination"]["hasMore"]
    rest = (await http.get(f"/tags/{term}", params={"limit": 2, "cursor": first["pagination"]["nextCursor"]})).json()
    assert [s["Id"] for s in first["smols"] + rest["smols"]][-1] == ids[0] and not rest["pagination"]["hasMore"]
    assert (await http.get("/tags/nosuchtag", params={"limit": 2})).json()["smols"] == []
    page = await search.list_by_creator(pool, address, 3)
    assert len(page) == 3 and page[-1]["id"] == ids[0]
    after = (page[0]["created_at"], page[0]["id"])
    assert [r["id"] for r in await search.list_by_creator(pool, address, 3, after)] == [r["id"] for r in page[1:]]


@pytest.mark.slow
async def test_backfill_indexes_smols_made_before(pool, store, http, stack):
    old = await seeded(pool, store, *[Seed(title=f"old {n}", style=["jazz", "blues"]) for n in range(3)],
                       indexed=False)  # fmt: skip
    for smol_id in old:
        assert (await http.get(f"/search/{smol_id}/similar")).status_code == 409
    result = subprocess.run([SMOL, "index", "--backfill"], env=stack.env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "indexed" in result.stdout
    for smol_id in old:
        assert (await http.get(f"/search/{smol_id}/similar")).status_code == 200
        features = await pool.fetchval("SELECT features FROM smol_vectors WHERE smol_id = $1", smol_id)
        assert len(features) == 2 and all(60 <= song["tempo"] <= 200 for song in features.values())
    assert await search.unindexed(pool, "", 10) == []
