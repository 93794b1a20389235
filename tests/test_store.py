import os

import pytest

from smol.errors import InvalidInput, NotFound
from smol.store import FileStore, check_key


async def test_put_get_and_ranges(tmp_path):
    store = FileStore(tmp_path)
    await store.put("a.mp3", b"0123456789")
    assert await store.get("a.mp3") == b"0123456789"
    assert await store.read_range("a.mp3", 2, 5) == b"2345"
    assert await store.size("a.mp3") == 10
    assert await store.exists("a.mp3")
    await store.delete("a.mp3")
    assert not await store.exists("a.mp3")
    with pytest.raises(NotFound):
        await store.get("a.mp3")


async def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    store = FileStore(tmp_path)
    await store.put("x/b.png", b"first")
    await store.put("x/b.png", b"second")
    assert await store.get("x/b.png") == b"second"
    assert sorted(os.listdir(tmp_path / "x")) == ["b.png"]


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
async def test_keys_that_could_escape_the_root_are_refused(tmp_path, key):
    store = FileStore(tmp_path / "root")
    with pytest.raises(InvalidInput):
        check_key(key)
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")
    with pytest.raises(InvalidInput):
        await store.get(key)
    assert not (tmp_path / "etc").exists()
