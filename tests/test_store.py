"""The object-store contract, run against the filesystem store and an S3 store on a real S3-protocol server
(moto's, on 127.0.0.1)."""

import os

import httpx
import pytest

from smol.errors import InvalidInput, NotFound
from smol.ids import new_smol_id
from smol.store import FileStore, S3Store, check_key
from tests.support import CREDENTIALS, _stop, make_bucket


@pytest.fixture(params=["file", "s3"])
async def store(request, tmp_path):
    if request.param == "file":
        yield FileStore(tmp_path / "root")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    made = S3Store(make_bucket(endpoint), "media", endpoint_url=endpoint, **CREDENTIALS)
    yield made
    await made.close()


async def test_put_get_and_ranges(store):
    await store.put("a.mp3", b"0123456789")
    assert await store.get("a.mp3") == b"0123456789"
    assert await store.read_range("a.mp3", 2, 5) == b"2345"
    assert await store.size("a.mp3") == 10
    assert await store.exists("a.mp3")
    await store.delete("a.mp3")
    assert not await store.exists("a.mp3")
    with pytest.raises(NotFound):
        await store.get("a.mp3")


async def test_keys_lists_every_object_under_the_store(store):
    for key in ("b.png", "a.mp3", "provider-jobs/elevenlabs/x.json"):
        await store.put(key, b"x")
    assert sorted([key async for key in store.keys()]) == ["a.mp3", "b.png", "provider-jobs/elevenlabs/x.json"]
    await store.delete("a.mp3")
    assert "a.mp3" not in [key async for key in store.keys()]


async def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    store = FileStore(tmp_path)
    await store.put("x/b.png", b"first")
    await store.put("x/b.png", b"second")
    assert await store.get("x/b.png") == b"second"
    assert sorted(os.listdir(tmp_path / "x")) == ["b.png"]


async def test_s3_presigned_urls_serve_the_object(s3_endpoint):
    store = S3Store(make_bucket(s3_endpoint), "", endpoint_url=s3_endpoint, **CREDENTIALS)
    await store.put("song.mp3", b"ID3 and some audio", "audio/mpeg")
    url = await store.presigned_url("song.mp3")
    async with httpx.AsyncClient() as client:
        response = await client.get(url, headers={"Range": "bytes=4-6"})
    assert response.status_code == 206 and response.content == b"and"
    await store.close()


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "a\x00b",
        "",
        ".",
        "a//b",
        "..",
        "a\\..\\b",
        "./a",
        "a/./b",
        ".hidden",
    ],
)
async def test_keys_that_could_escape_the_root_are_refused(store, tmp_path, key):
    with pytest.raises(InvalidInput):
        check_key(key)
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")
    with pytest.raises(InvalidInput):
        await store.get(key)
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("presign", [False, True])
async def test_the_api_serves_media_from_s3(stack, pool, s3_endpoint, presign):
    bucket = make_bucket(s3_endpoint)
    api, url = stack.start_api(object_store=f"s3://{bucket}/media", s3_endpoint_url=s3_endpoint,
                               s3_access_key_id="test", s3_secret_access_key="test",
                               s3_presign_media=str(presign).lower())  # fmt: skip
    store = S3Store(bucket, "media", endpoint_url=s3_endpoint, **CREDENTIALS)
    try:
        await store.put("abcdef.mp3", b"0123456789" * 10, "audio/mpeg")
        owner = "INSERT INTO smols (id, title, song_1, song_2, address) VALUES ($1, 't', 'abcdef', 'abcdeg', 'GS3')"
        await pool.execute(owner, new_smol_id())  # a public smol owns the song
        async with httpx.AsyncClient(base_url=url, follow_redirects=True) as client:
            whole = await client.get("/song/abcdef.mp3")
            part = await client.get("/song/abcdef.mp3", headers={"Range": "bytes=10-19"})
            missing = await client.get("/song/nothing.mp3")
            first = (await client.get("/song/abcdef.mp3", follow_redirects=False)).status_code
        assert whole.content == b"0123456789" * 10
        assert part.status_code == 206 and part.content == b"0123456789"
        assert missing.status_code == 404
        assert first == (307 if presign else 200)
    finally:
        await store.close()
        _stop(api)
