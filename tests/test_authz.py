"""The authorisation matrix: every mutating route called anonymously, by another user and by the owner; and who sees
what (one visibility rule: a smol's content is shown to its owner, and to others only when it is public and safe)
across details, lists, mixtapes, likes, media, events and minting, for finished smols and smols still being made.

The "unsafe" smols below have a row that says `public` while their nsfw step says unsafe: the row and the verdict
disagree (a row from before the forced-private rule, or one changed by hand), and the verdict must win."""

import asyncio
import io
import json
import secrets
from datetime import datetime, timedelta

import httpx
import pytest
from PIL import Image

from contracts.smol import Song
from smol import social
from smol.errors import NotFound
from smol.store import open_store
from tests.support import OTHER, OTHER_KEY, OWNER, OWNER_KEY, _stop, client_xdr, insert_smol, plays_of, wait_for
from tests.workers import activities_with, start_smol, worker_for

KINDS = ("public", "private", "unsafe")
VIEWERS = ("owner", "other", "anonymous")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


class Tally:
    """Requests sent and checks made (each: should the caller see this smol, and did they)."""

    def __init__(self):
        self.requests = self.checks = self.refused = self.allowed = 0
        self.wrong: list[str] = []

    def check(self, label: str, expected: bool, seen: bool) -> None:
        self.checks += 1
        if expected != seen:
            self.wrong.append(f"{label}: {'shown' if expected else 'hidden'} expected, {'shown' if seen else 'hidden'}")
        elif expected:
            self.allowed += 1
        else:
            self.refused += 1

    def status(self, label: str, response, expected: bool, refused: int = 404) -> None:
        """A single-smol answer: 2xx when allowed, `refused` (404: as if it did not exist) when not."""
        seen = response.status_code < 300
        if not seen and response.status_code != refused:
            self.wrong.append(f"{label}: {response.status_code} (expected {refused} when refused)")
        self.check(label, expected, seen)

    def summary(self) -> str:
        return (f"authorisation matrix: {self.requests} requests, {self.checks} checks: {self.refused} refused as "
                f"expected, {self.allowed} allowed as expected, {len(self.wrong)} wrong")  # fmt: skip


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def matrix_summary():
    yield
    print("\n" + TALLY.summary())


def assert_no_wrong(before: int) -> None:
    wrong = TALLY.wrong[before:]
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)


def expected(kind: str, viewer: str) -> bool:
    return viewer == "owner" or kind == "public"


def headers_of(stack, viewer: str) -> dict:
    return {"owner": stack.auth(OWNER), "other": stack.auth(OTHER), "anonymous": {}}[viewer]


async def ask(http, method: str, url: str, headers: dict | None = None, **kwargs):
    TALLY.requests += 1
    return await http.request(method, url, headers=headers or {}, **kwargs)


async def put_media(stack, smol: dict) -> None:
    store = open_store(stack.settings)
    await store.put(f"{smol['id']}.png", PNG, "image/png")
    for key in ("song_1", "song_2"):
        await store.put(f"{smol[key]}.mp3", b"ID3" + secrets.token_bytes(2000), "audio/mpeg")
    await store.close()


async def insert_mixtape(pool, smol_ids: list[str] | str, address: str = OWNER) -> str:
    mixtape_id = secrets.token_hex(8)
    await social.create_mixtape(pool, mixtape_id, "t", "d", [smol_ids] if isinstance(smol_ids, str) else smol_ids,
                                address)  # fmt: skip
    return mixtape_id


# route -> (method, path, body, status for the owner); anonymous callers get 401, other users 404.
OWNER_ONLY = {
    "toggle public": ("PUT", "/{id}", None, 204),
    "swap songs": ("PUT", "/{id}/{song_2}", None, 204),
    "delete smol": ("DELETE", "/{id}", None, 204),
    "retry": ("POST", "/retry/{id}", None, 409),  # finished: nothing to retry
    "update mixtape": ("PUT", "/mixtapes/{mixtape}", {"title": "new", "desc": "", "smols": ["{id}"]}, 204),
    "delete mixtape": ("DELETE", "/mixtapes/{mixtape}", None, 204),
}


def _fill(template, values: dict):
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


@pytest.mark.parametrize("route", list(OWNER_ONLY))
async def test_owner_only_routes(stack, http, pool, route):
    method, path, body, owner_status = OWNER_ONLY[route]
    smol = await insert_smol(pool)
    values = {**smol, "mixtape": await insert_mixtape(pool, smol["id"])}
    request = {"method": method, "url": _fill(path, values)}
    if body is not None:
        request["json"] = _fill(body, values)

    anonymous = await http.request(**request)
    assert anonymous.status_code == 401, (route, anonymous.text)
    forged = await http.request(**request, headers={"Authorization": "Bearer " + stack.token(OWNER)[:-4] + "AAAA"})
    assert forged.status_code == 401, route
    other = await http.request(**request, headers=stack.auth(OTHER))
    assert other.status_code == 404, (route, other.text)
    assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol["id"]) == 1  # nothing changed
    owner = await http.request(**request, headers=stack.auth(OWNER))
    assert owner.status_code == owner_status, (route, owner.text)


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/", {"prompt": "a matrix song"}, 200),
        ("PUT", "/likes/{id}", None, 204),
        ("POST", "/mixtapes", {"title": "m", "smols": ["{id}"]}, 201),
    ],
)
async def test_routes_for_any_signed_in_user(stack, http, pool, method, path, body, status):
    smol = await insert_smol(pool)
    request = {"method": method, "url": _fill(path, smol)}
    if body is not None:
        request["json"] = _fill(body, smol)
    assert (await http.request(**request)).status_code == 401
    assert (await http.request(**request, headers=stack.auth(OTHER))).status_code == status


async def test_a_flagged_smol_cannot_be_made_public(stack, http, pool):
    smol = await insert_smol(pool, kind="unsafe")
    await pool.execute("UPDATE smols SET public = false WHERE id = $1", smol["id"])
    response = await ask(http, "PUT", f"/{smol['id']}", stack.auth(OWNER))
    assert response.status_code == 400 and "unsafe" in response.text
    assert await pool.fetchval("SELECT public FROM smols WHERE id = $1", smol["id"]) is False


@pytest.fixture(scope="module")
async def matrix(stack, pool) -> dict:
    """One finished smol of each kind, with media, liked by both users, in one playlist and one mixtape; written at
    one moment in the past so a cursor finds them on `/` whatever else the session made."""
    moment = datetime(2001, 1, 1) + timedelta(seconds=secrets.randbelow(10**8))
    playlist = f"matrix-{secrets.token_hex(4)}"
    smols = {}
    for kind in KINDS:
        smols[kind] = await insert_smol(pool, kind=kind, created_at=moment, media=True, playlist=playlist)
        await put_media(stack, smols[kind])
        for address in (OWNER, OTHER):
            await pool.execute("INSERT INTO likes (id, address) VALUES ($1, $2)", smols[kind]["id"], address)
    mixtape = await insert_mixtape(pool, [smols[k]["id"] for k in KINDS])
    return {"smols": smols, "moment": moment, "playlist": playlist, "mixtape": mixtape}


async def test_media_matrix(stack, http, pool, matrix):
    before = len(TALLY.wrong)
    plays = {kind: await plays_of(pool, smol["id"]) for kind, smol in matrix["smols"].items()}
    counted = dict.fromkeys(KINDS, 0)
    for kind, smol in matrix["smols"].items():
        for viewer in VIEWERS:
            allowed = expected(kind, viewer)
            for method in ("GET", "HEAD"):
                for path in (f"/song/{smol['song_1']}.mp3", f"/image/{smol['id']}.png"):
                    label = f"{method} {path.split('/')[1]} of a {kind} smol by {viewer}"
                    response = await ask(http, method, path, headers_of(stack, viewer))
                    TALLY.status(label, response, allowed)
                    counted[kind] += allowed and method == "GET" and path.startswith("/song/")
                    if response.status_code != 200:
                        continue
                    caching = response.headers.get("cache-control", "")
                    if kind == "public" and caching != "public, max-age=31536000, immutable":
                        TALLY.wrong.append(f"{label}: Cache-Control {caching!r}")
                    if kind != "public" and not (
                        caching.startswith("private") and "Authorization" in response.headers.get("vary", "")
                    ):
                        TALLY.wrong.append(f"{label}: Cache-Control {caching!r}, Vary {response.headers.get('vary')!r}")
            ranged = await ask(http, "GET", f"/song/{smol['song_2']}.mp3",
                               {**headers_of(stack, viewer), "Range": "bytes=0-9"})  # fmt: skip
            TALLY.status(f"a range of a {kind} smol's song by {viewer}", ranged, allowed)
            counted[kind] += allowed
    for kind, smol in matrix["smols"].items():  # plays: the owner's own count (as before), others' only if allowed
        TALLY.check(f"plays of the {kind} smol", True, await plays_of(pool, smol["id"]) - plays[kind] == counted[kind])
    assert_no_wrong(before)


async def test_media_handed_to_nginx_follow_the_rule(stack, pool, matrix):
    before = len(TALLY.wrong)
    proc, url = stack.start_api(media_accel_prefix="/_media/")
    try:
        async with httpx.AsyncClient(base_url=url) as accel:
            for kind, smol in matrix["smols"].items():
                for viewer in VIEWERS:
                    for path in (f"/song/{smol['song_1']}.mp3", f"/image/{smol['id']}.png"):
                        response = await ask(accel, "GET", path, headers_of(stack, viewer))
                        label = f"X-Accel-Redirect of {path.split('/')[1]} of a {kind} smol to {viewer}"
                        TALLY.status(label, response, expected(kind, viewer))
                        if response.status_code == 404 and "x-accel-redirect" in response.headers:
                            TALLY.wrong.append(f"{label}: handed over with a 404")
                        if response.status_code == 200 and kind != "public":
                            if not response.headers.get("cache-control", "").startswith("private"):
                                TALLY.wrong.append(f"{label}: {response.headers.get('cache-control')!r}")
    finally:
        _stop(proc)
    assert_no_wrong(before)


def _ids(body) -> set[str]:
    items = body["smols"] if isinstance(body, dict) else body
    return {item["Id"] if isinstance(item, dict) else item for item in items}


async def test_lists_matrix(stack, http, matrix):
    import base64

    before = len(TALLY.wrong)
    smols, moment = matrix["smols"], matrix["moment"]
    after = (moment + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    cursor = base64.b64encode(json.dumps({"createdAt": after, "id": ""}).encode()).decode()
    # list -> (url, viewers, whether a smol of `kind` should be listed to `viewer`)
    public_only = lambda kind, viewer: kind == "public"  # noqa: E731
    lists = {
        "/": (f"/?limit=100&cursor={cursor}", VIEWERS, public_only),
        "/created": ("/created?limit=100", ("owner",), expected),
        "/liked": ("/liked?limit=100", ("owner", "other"), expected),
        "playlist": (f"/playlist/{matrix['playlist']}", VIEWERS, public_only),
        "mixtape": (f"/mixtapes/{matrix['mixtape']}", VIEWERS, expected),
    }
    for name, (url, viewers, rule) in lists.items():
        for viewer in viewers:
            response = await ask(http, "GET", url, headers_of(stack, viewer))
            assert response.status_code == 200, (name, viewer, response.text)
            body = response.json()
            listed = _ids(body["Smols"] if name == "mixtape" else body)
            for kind, smol in smols.items():
                TALLY.check(f"{name} to {viewer}: the {kind} smol", rule(kind, viewer), smol["id"] in listed)
    for viewer in VIEWERS:
        mixtapes = (await ask(http, "GET", "/mixtapes", headers_of(stack, viewer))).json()
        [mine] = [m for m in mixtapes if m["Id"] == matrix["mixtape"]]
        for kind, smol in smols.items():
            TALLY.check(f"/mixtapes to {viewer}: the {kind} smol", expected(kind, viewer), smol["id"] in mine["Smols"])
    assert_no_wrong(before)


async def test_details_and_events_matrix(stack, http, matrix):
    before = len(TALLY.wrong)
    for kind, smol in matrix["smols"].items():
        for viewer in VIEWERS:
            allowed = expected(kind, viewer)
            detail = await ask(http, "GET", f"/{smol['id']}", headers_of(stack, viewer))
            TALLY.status(f"GET /{{id}} of a {kind} smol by {viewer}", detail, allowed)
            TALLY.requests += 1
            async with http.stream("GET", f"/{smol['id']}/events", headers=headers_of(stack, viewer)) as events:
                text = (await events.aread()).decode() if events.status_code == 200 else ""
            TALLY.status(f"events of a {kind} smol to {viewer}", events, allowed)
            if events.status_code == 200 and '"d1"' not in text:
                TALLY.wrong.append(f"events of a {kind} smol to {viewer}: {text[:200]}")
    assert_no_wrong(before)


async def test_likes_and_mixtape_members_matrix(stack, http, pool):
    before = len(TALLY.wrong)
    for kind in KINDS:
        for viewer in ("owner", "other"):
            smol = await insert_smol(pool, kind=kind)
            allowed = expected(kind, viewer)
            like = await ask(http, "PUT", f"/likes/{smol['id']}", headers_of(stack, viewer))
            TALLY.status(f"like of a {kind} smol by {viewer}", like, allowed)
            body = {"title": "mine", "smols": [smol["id"]]}
            made = await ask(http, "POST", "/mixtapes", headers_of(stack, viewer), json=body)
            TALLY.status(f"a mixtape of a {kind} smol by {viewer}", made, allowed, refused=400)
    assert_no_wrong(before)


async def test_mint_claims_matrix(stack, pool, api, rpc_client, temporal):
    before = len(TALLY.wrong)
    keys = {"owner": OWNER_KEY, "other": OTHER_KEY}
    started = []
    for kind in KINDS:
        for viewer in VIEWERS:
            smol = await insert_smol(pool, kind=kind)
            caller = keys.get(viewer, OTHER_KEY)
            xdr = await client_xdr(rpc_client, caller, [smol["id"]])
            response = await ask(api, "POST", f"/mint/{smol['id']}", headers_of(stack, viewer), json={"xdr": xdr})
            if viewer == "anonymous":
                TALLY.status(f"mint of a {kind} smol by {viewer}", response, False, refused=401)
            else:
                TALLY.status(f"mint of a {kind} smol by {viewer}", response, expected(kind, viewer))
            if response.status_code == 202:
                started.append(response.json()["mint_id"])
    for mint_id in started:  # no mint worker here: nothing is sent
        await temporal.get_workflow_handle(f"mint-{mint_id}").terminate("matrix over")
    assert_no_wrong(before)


class HalfDoneSongs:
    """The first song finishes (and is archived); the second streams partial audio from the provider for ever: the
    smol stays in progress with one song of ours and one of the provider's."""

    name = "halfdone"

    async def submit(self, job, taken=None):
        return [f"half-{job.smol_id[:16]}-a", f"half-{job.smol_id[:16]}-b"]

    async def poll(self, song_ids):
        return [Song(song_ids[0], 4), Song(song_ids[1], 2, f"https://songs.example/partial/{song_ids[1]}.mp3")]

    async def fetch_audio(self, music_id, audio_url=None):
        return b"ID3" + music_id.encode() * 100


PROGRESS_KEYS = {"kv_do", "wf", "liked"}
PROMPTS = {
    "public": ("a sunny pop song about ducks", True),
    "private": ("a secret diary in lofi", False),
    "unsafe": ("gore and murder at the disco", True),  # the local nsfw check flags it; it was asked for in public
}


@pytest.fixture(scope="module")
async def in_progress(stack, http, pool, temporal):
    """A smol of each kind caught half made: cover, words and verdict saved, one song archived, one streaming."""
    import uuid

    queue = f"matrix-{uuid.uuid4().hex[:8]}"
    async with worker_for(temporal, queue, activities_with(stack, pool, songs=HalfDoneSongs())):
        runs = {}
        for kind, (prompt, public) in PROMPTS.items():
            smol_id, handle = await start_smol(temporal, queue, prompt=prompt, address=OWNER, public=public)
            runs[kind] = {"id": smol_id, "handle": handle}
        for run in runs.values():
            body = await wait_for(http, run["id"], stack.auth(OWNER), until=lambda b: any(
                s["status"] >= 4 for s in b["kv_do"].get("songs", [])))  # fmt: skip
            run["song_1"], run["song_2"] = body["kv_do"]["song_ids"]
        yield runs
        for run in runs.values():
            await run["handle"].terminate("matrix over")


async def test_in_progress_matrix(stack, http, in_progress):
    before = len(TALLY.wrong)
    assert (await http.get(f"/{in_progress['unsafe']['id']}", headers=stack.auth(OWNER))).json()["kv_do"]["nsfw"][
        "safe"
    ] is False
    for kind, run in in_progress.items():
        for viewer in VIEWERS:
            allowed = expected(kind, viewer)
            label = f"a {kind} smol in progress to {viewer}"
            response = await ask(http, "GET", f"/{run['id']}", headers_of(stack, viewer))
            assert response.status_code == 200, (label, response.text)
            body = response.json()
            shown = "payload" in body["kv_do"] or "lyrics" in body["kv_do"] or "songs" in body["kv_do"]
            TALLY.check(f"GET /{{id}}: the content of {label}", allowed, shown)
            if not allowed and body != {"kv_do": {"image": True}, "wf": {"status": body["wf"]["status"]},
                                        "liked": False}:  # fmt: skip
                TALLY.wrong.append(f"{label}: more than progress: {body}")
            if allowed and body["kv_do"]["payload"]["prompt"] != PROMPTS[kind][0]:
                TALLY.wrong.append(f"{label}: {body['kv_do']}")
            first = await _first_event(stack, http, run["id"], headers_of(stack, viewer))
            TALLY.check(f"events: the content of {label}", allowed, set(first["kv_do"]) != {"image"})
            if not allowed and first != {"kv_do": {"image": True}, "wf": {"status": first["wf"]["status"]},
                                         "liked": False}:  # fmt: skip
                TALLY.wrong.append(f"events of {label}: more than progress: {first}")
            for path in (f"/image/{run['id']}.png", f"/song/{run['song_1']}.mp3"):
                for method in ("GET", "HEAD"):
                    media = await ask(http, method, path, headers_of(stack, viewer))
                    media_label = f"{method} {path.split('/')[1]} of {label}"
                    TALLY.status(media_label, media, allowed)
                    if media.status_code == 200 and not media.headers.get("cache-control", "").startswith("private"):
                        TALLY.wrong.append(f"{media_label}: {media.headers.get('cache-control')!r} (still being made)")
    assert_no_wrong(before)


async def _first_event(stack, http, smol_id: str, headers: dict) -> dict:
    TALLY.requests += 1
    async with http.stream("GET", f"/{smol_id}/events", headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                return json.loads(line.removeprefix("data: "))
    raise AssertionError("no event")


async def test_audio_urls_are_absolute_while_in_progress(stack, http, in_progress):
    run = in_progress["private"]
    songs = (await http.get(f"/{run['id']}", headers=stack.auth(OWNER))).json()["kv_do"]["songs"]
    by_id = {song["music_id"]: song["audio"] for song in songs}
    assert by_id[run["song_1"]] == f"{stack.api_url}/song/{run['song_1']}.mp3"  # archived: ours
    assert by_id[run["song_2"]] == f"https://songs.example/partial/{run['song_2']}.mp3"  # streaming: the provider's
    event = await _first_event(stack, http, run["id"], stack.auth(OWNER))
    assert {s["music_id"]: s["audio"] for s in event["kv_do"]["songs"]} == by_id
    archived = await http.get(by_id[run["song_1"]], headers=stack.auth(OWNER))
    assert archived.status_code == 200 and archived.content.startswith(b"ID3")


async def test_finished_private_smols_stay_hidden_while_watched(stack, http, pool):
    """A smol asked for in private, watched by someone else from start to end: progress only, then 404."""
    created = await http.post("/", json={"prompt": "a watched private waltz", "public": False},
                              headers=stack.auth(OWNER))  # fmt: skip
    seen = []
    async with asyncio.timeout(90):
        while (response := await http.get(f"/{created.text}")).status_code == 200:
            seen.append(response.json())
            await asyncio.sleep(0.2)
    assert seen and all(set(body) == PROGRESS_KEYS and set(body["kv_do"]) == {"image"} for body in seen), seen
    assert (await http.get(f"/{created.text}", headers=stack.auth(OWNER))).json()["d1"]["Public"] == 0


async def test_a_like_of_a_smol_that_went_private_can_be_undone_not_redone(stack, http, pool):
    smol = await insert_smol(pool, kind="public")
    assert (await http.put(f"/likes/{smol['id']}", headers=stack.auth(OTHER))).status_code == 204
    await pool.execute("UPDATE smols SET public = false WHERE id = $1", smol["id"])
    assert (await http.put(f"/likes/{smol['id']}", headers=stack.auth(OTHER))).status_code == 204  # unliked
    assert smol["id"] not in (await http.get("/likes", headers=stack.auth(OTHER))).json()
    assert (await http.put(f"/likes/{smol['id']}", headers=stack.auth(OTHER))).status_code == 404  # not again


async def test_a_page_decides_from_one_snapshot_whether_the_smol_is_stored_and_whose_it_is(pool, monkeypatch):
    """GET /{id} asks once whether the viewer may see the row and whether the smol has a row at all: a run that
    stores its row between two looks cannot make its own smol a 404 to its owner (one look, one snapshot), and a
    stranger is refused without a second query or a look at the workflow (`temporal` is None here)."""
    from api.services import smols
    from smol import repo

    smol = await insert_smol(pool, kind="private")
    real, looks = repo.smol_page, []

    async def counted(*args, **kwargs):
        looks.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(repo, "smol_page", counted)
    monkeypatch.setattr(repo, "get_smol", None)  # (the page needs no other look at the row)
    body = await smols.detail(pool, None, smol["id"], OWNER, "http://x", count_view=True)
    assert body["d1"]["Id"] == smol["id"] and body["d1"]["Views"] == 1 and len(looks) == 1
    with pytest.raises(NotFound):  # someone else gets nothing, and no view is counted
        await smols.detail(pool, None, smol["id"], OTHER, "http://x", count_view=True)
    assert len(looks) == 2 and await pool.fetchval("SELECT views FROM smols WHERE id = $1", smol["id"]) == 1
    unstored = await real(pool, "f" * 64, OWNER, True)
    assert not unstored["stored"] and unstored["id"] is None and unstored["steps"] == {} and not unstored["liked"]
