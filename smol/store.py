"""Object storage for covers and songs. Keys are plain relative paths such as `<id>.png`."""

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from smol.errors import InvalidInput, NotFound

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$")


def check_key(key: str) -> str:
    """Refuse any key that could leave the store's root: `..`, absolute paths, NUL, backslashes, empty parts."""
    if not key or len(key) > 512 or key.startswith("/"):
        raise InvalidInput(f"invalid object key {key!r}")
    for segment in key.split("/"):
        if segment in (".", "..") or not _SEGMENT.match(segment):
            raise InvalidInput(f"invalid object key {key!r}")
    return key


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def read_range(self, key: str, start: int, end: int) -> bytes: ...
    async def size(self, key: str) -> int: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...


class FileStore:
    """A directory on the local disk. Writes go to a temporary file first and are renamed into place."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidInput(f"invalid object key {key!r}")
        return path

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, path: Path, start: int = 0, length: int = -1) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(length)
        except FileNotFoundError:
            raise NotFound("object not found") from None

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, self._path(key))

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start..end` inclusive, as in an HTTP range."""
        return await asyncio.to_thread(self._read, self._path(key), start, end - start + 1)

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("object not found") from None

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def open_store(location: Path | str) -> ObjectStore:
    return FileStore(location)
