"""Object storage for covers and songs. Keys are plain relative paths such as `<id>.png`."""

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
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
    async def close(self) -> None: ...
    def keys(self) -> AsyncIterator[str]: ...


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
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a web server in front (X-Accel-Redirect) must read it
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

    async def close(self) -> None:
        pass

    async def keys(self) -> AsyncIterator[str]:
        """Every stored key (files being written are left out)."""
        paths = await asyncio.to_thread(lambda: [p for p in self.root.rglob("*") if p.is_file()])
        for path in sorted(paths):
            if not path.name.startswith(".tmp-"):
                yield path.relative_to(self.root).as_posix()


class S3Store:
    """An S3 bucket (AWS, R2, MinIO…) under an optional key prefix, through one long-lived aioboto3 client."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key_id: str | None = None, secret_access_key: str | None = None):  # fmt: skip
        import aioboto3  # only in S3 mode: it takes a second to import

        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
        )
        self._endpoint_url = endpoint_url
        self._client = None
        self._stack = None
        self._lock = asyncio.Lock()

    async def _s3(self):
        async with self._lock:
            if self._client is None:
                self._stack = AsyncExitStack()
                self._client = await self._stack.enter_async_context(
                    self._session.client("s3", endpoint_url=self._endpoint_url)
                )
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _get(self, key: str, **extra) -> bytes:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except s3.exceptions.NoSuchKey:
            raise NotFound("object not found") from None
        async with response["Body"] as body:
            return await body.read()

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        s3 = await self._s3()
        await s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes:
        return await self._get(key)

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        return await self._get(key, Range=f"bytes={start}-{end}")

    async def size(self, key: str) -> int:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound("object not found") from None
            raise
        return int(head["ContentLength"])

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def presigned_url(self, key: str, seconds: int = 900) -> str:
        s3 = await self._s3()
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        return await s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    async def keys(self) -> AsyncIterator[str]:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._client = self._stack = None


def open_store(settings) -> ObjectStore:
    """The store named in settings: `s3://bucket/prefix` for S3-compatible storage, else a local directory."""
    location = settings.object_store
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        return S3Store(bucket, prefix, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                       access_key_id=settings.s3_access_key_id, secret_access_key=secret)  # fmt: skip
    return FileStore(settings.object_root())
