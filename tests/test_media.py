"""Songs with byte ranges and play counts; covers with scaling; nothing outside the store is reachable."""

import secrets

import httpx
import pytest

from smol.store import S3Store
from tests.support import ADDRESS, CREDENTIALS, OTHER, OWNER, _stop, insert_smol, make_bucket, plays_of


@pytest.fixture
def song(finished_smol):
    return finished_smol["d1"]["Song_1"]


async def test_whole_song_and_ranges(http, song):
    whole = await http.get(f"/song/{song}.mp3")
    size = len(whole.content)
    assert whole.headers["accept-ranges"] == "bytes"

    from_start = await http.get(f"/song/{song}.mp3", headers={"Range": "bytes=0-"})
    assert from_start.status_code == 206
    assert from_start.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    assert from_start.content == whole.content

    middle = await http.get(f"/song/{song}.mp3", headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206 and middle.headers["content-range"] == f"bytes 100-199/{size}"
    assert middle.content == whole.content[100:200]

    tail = await http.get(f"/song/{song}.mp3", headers={"Range": f"bytes={size - 10}-{size + 500}"})
    assert tail.status_code == 206 and tail.content == whole.content[-10:]

    suffix = await http.get(f"/song/{song}.mp3", headers={"Range": "bytes=-25"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-25:]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size_plus}-{size_plus2}", "bytes=50-10"])
async def test_unsatisfiable_range_is_416_with_the_size(http, song, header):
    size = len((await http.get(f"/song/{song}.mp3")).content)
    value = header.format(size=size, size_plus=size + 1, size_plus2=size + 9)
    response = await http.get(f"/song/{song}.mp3", headers={"Range": value})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


async def test_plays_count_whole_and_from_zero_requests_only(http, pool, finished_smol, song):
    smol_id = finished_smol["d1"]["Id"]
    before = await plays_of(pool, smol_id)
    await http.get(f"/song/{song}.mp3")
    await http.get(f"/song/{song}.mp3", headers={"Range": "bytes=0-99"})
    await http.get(f"/song/{song}.mp3", headers={"Range": "bytes=1000-1999"})
    assert await plays_of(pool, smol_id) == before + 2


async def test_a_listener_counts_once_a_window_however_often_they_ask(stack, pool, finished_smol, song):
    """With SMOL_COUNT_ONCE_SECONDS (default 10 minutes): asking again does not move trending; another listener (a
    signed-in address, else a client address, here as a proxy the API trusts sends it) counts."""
    api, url = stack.start_api(count_once_seconds=600)
    smol_id = finished_smol["d1"]["Id"]
    one, other = (f"192.0.2.{n}" for n in secrets.SystemRandom().sample(range(1, 255), 2))
    views = "SELECT views FROM smols WHERE id = $1"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            plays, seen = await plays_of(pool, smol_id), await pool.fetchval(views, smol_id)
            owner = stack.auth(ADDRESS)
            assert (await http.put(f"/{smol_id}", headers=owner)).status_code == 204  # private: a 404 counts nothing
            try:
                assert (await http.get(f"/{smol_id}", headers={"X-Forwarded-For": one})).status_code == 404
            finally:
                assert (await http.put(f"/{smol_id}", headers=owner)).status_code == 204
            for _ in range(3):
                assert (await http.get(f"/{smol_id}", headers={"X-Forwarded-For": one})).status_code == 200
                assert (await http.get(f"/song/{song}.mp3", headers={"X-Forwarded-For": one})).status_code == 200
            assert (await pool.fetchval(views, smol_id), await plays_of(pool, smol_id)) == (seen + 1, plays + 1)
            await http.get(f"/{smol_id}", headers={"X-Forwarded-For": other})
            await http.get(f"/song/{song}.mp3", headers={"X-Forwarded-For": other, "Range": "bytes=0-"})
            await http.get(f"/{smol_id}", headers={"X-Forwarded-For": one, **stack.auth(OTHER)})  # (signed in)
            assert (await pool.fetchval(views, smol_id), await plays_of(pool, smol_id)) == (seen + 3, plays + 2)
    finally:
        _stop(api)


@pytest.mark.parametrize(
    "path",
    [
        "/song/0123456789abcdef.mp3",
        "/song/..%2F..%2Fetc%2Fpasswd.mp3",
        "/song/%2e%2e.mp3",
        "/song/../pg/postmaster.pid",
        "/song/a%00b.mp3",
        "/image/" + "0" * 64 + ".png",
        "/image/..%2F" + "0" * 61 + ".png",
        "/image/../../etc/passwd.png",
        "/" + "g" * 64,
        "/" + "0" * 64,
    ],
)
async def test_unknown_ids_and_traversal_are_404(http, path):
    response = await http.get(path)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])


@pytest.mark.parametrize("scale", ["0", "33", "-1", "abc", "1.5", "", "99999999999999999999"])
async def test_scale_outside_1_to_32_is_400(http, finished_smol, scale):
    response = await http.get(f"/image/{finished_smol['d1']['Id']}.png", params={"scale": scale})
    assert response.status_code == 400 and "scale" in response.text


async def test_etag_and_if_none_match_answer_304(http, finished_smol, song):
    smol_id = finished_smol["d1"]["Id"]
    for path in (f"/song/{song}.mp3", f"/image/{smol_id}.png", f"/image/{smol_id}.png?scale=4"):
        first = await http.get(path)
        etag = first.headers["etag"]
        again = await http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        weak = await http.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        changed = await http.get(path, headers={"If-None-Match": '"something-else"'})
        assert changed.status_code == 200 and changed.content == first.content
    assert (await http.get(f"/image/{smol_id}.png")).headers["etag"] != (
        await http.get(f"/image/{smol_id}.png?scale=2")
    ).headers["etag"]


async def test_head_gives_the_headers_without_the_body_or_a_play(http, pool, finished_smol, song):
    smol_id = finished_smol["d1"]["Id"]
    whole = await http.get(f"/song/{song}.mp3")
    before = await plays_of(pool, smol_id)
    head = await http.head(f"/song/{song}.mp3")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(whole.content)
    assert head.headers["accept-ranges"] == "bytes" and head.headers["content-type"] == "audio/mpeg"
    ranged = await http.head(f"/song/{song}.mp3", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    assert await plays_of(pool, smol_id) == before
    image = await http.head(f"/image/{smol_id}.png?scale=2")
    assert image.status_code == 200 and image.content == b"" and int(image.headers["content-length"]) > 0
    assert (await http.head(f"/image/{'0' * 64}.png")).status_code == 404


async def test_presigned_redirects_follow_the_visibility_rule(stack, pool, s3_endpoint):
    """With S3 and presigned media, the API checks who asks before it hands out a URL to the bucket."""
    bucket = make_bucket(s3_endpoint)
    s3 = {"s3_endpoint_url": s3_endpoint, "s3_access_key_id": "test", "s3_secret_access_key": "test"}
    api, url = stack.start_api(object_store=f"s3://{bucket}/media", s3_presign_media="true", **s3)
    store = S3Store(bucket, "media", endpoint_url=s3_endpoint, **CREDENTIALS)
    smols = {kind: await insert_smol(pool, kind=kind, media=True) for kind in ("public", "private", "unsafe")}
    try:
        for smol in smols.values():
            await store.put(f"{smol['song_1']}.mp3", b"ID3" + b"0" * 100, "audio/mpeg")
            await store.put(f"{smol['id']}.png", b"\x89PNG", "image/png")
        async with httpx.AsyncClient(base_url=url) as client:
            for kind, smol in smols.items():
                for who, headers in [("owner", stack.auth(OWNER)), ("other", stack.auth(OTHER)), ("anyone", {})]:
                    for path in (f"/song/{smol['song_1']}.mp3", f"/image/{smol['id']}.png"):
                        response = await client.get(path, headers=headers)
                        if kind == "public" or who == "owner":
                            assert response.status_code == 307 and bucket in response.headers["location"], path
                        else:
                            assert response.status_code == 404 and "location" not in response.headers, (kind, who)
    finally:
        await store.close()
        _stop(api)


async def test_a_broken_or_stale_token_only_makes_media_requests_anonymous(http, finished_smol, song):
    """<img> and <audio> send whatever cookie the browser still holds: public media stay playable."""
    cover = f"/image/{finished_smol['d1']['Id']}.png"
    assert (await http.get(f"/song/{song}.mp3", headers={"Authorization": "Bearer not-a-token"})).status_code == 200
    assert (await http.get(cover, headers={"Cookie": "smol_token=expired.or.forged"})).status_code == 200
