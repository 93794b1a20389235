"""The SoundFlow catalog for the API: the stored catalogs as served (absolute urls, premium entries without url or
object key), signed URLs of premium tracks, and premium requests."""

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.soundflow.catalog import ALL, FREE, PREMIUM, PRIVATE, by_category_key, record_key
from contracts.catalog import ENTRY_ID_PATTERN, SLUGS, PremiumTrackInput
from smol.errors import Forbidden, NotFound, ServiceUnavailable
from smol.settings import Settings
from smol.store import ObjectStore
from smol.temporal import start_workflow
from workflows.catalog import PremiumTrackWorkflow, premium_workflow_id

CATALOGS = {"all": ALL, "free": FREE, "premium": PREMIUM}
FREE_AUDIO = re.compile(r"^audio/free/\d{4}-\d{2}-\d{2}/free-\d{4}-\d{2}-\d{2}-[a-z0-9][a-z0-9_]{0,63}\.mp3$")
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
# key -> (stored, base, served, etag): one rendering per catalog (the base follows the Host header unless
# SMOL_PUBLIC_URL is set, so keying by it would let any client grow this without bound)
_served: dict[str, tuple[bytes, str, bytes, str]] = {}


def catalog_key(name: str) -> str:
    if name in CATALOGS:
        return CATALOGS[name]
    if name in SLUGS:
        return by_category_key(name)
    raise NotFound(f"no catalog {name!r}; categories: {', '.join(SLUGS)}")


async def served_catalog(store: ObjectStore, key: str, base: str) -> tuple[bytes, str]:
    """The catalog's JSON as served, and its ETag. Not made yet: an empty list."""
    try:
        stored = await store.get(key)
    except NotFound:
        stored = b"[]"
    cached = _served.get(key)
    if cached and cached[0] == stored and cached[1] == base:
        return cached[2], cached[3]
    try:
        entries = json.loads(stored)
        served = json.dumps([_shown(entry, base) for entry in entries]).encode()
    except (ValueError, TypeError, AttributeError):
        raise ServiceUnavailable("the catalog is being rewritten or damaged; try again shortly") from None
    etag = '"' + hashlib.sha256(served).hexdigest()[:32] + '"'
    _served[key] = (stored, base, served, etag)
    return served, etag


def _shown(entry: dict, base: str) -> dict:
    if entry.get("tier") == "premium":
        return {name: value for name, value in entry.items() if name not in PRIVATE}
    url = entry.get("url")
    if isinstance(url, str) and url.startswith("/"):
        entry = {**entry, "url": base + url}
    return entry


def _signing_key(settings: Settings) -> bytes:
    return hmac.new(settings.jwt_secret.get_secret_value().encode(), b"soundflow signed urls", "sha256").digest()


def _signature(settings: Settings, entry_id: str, expires: int) -> str:
    return hmac.new(_signing_key(settings), f"{entry_id}.{expires}".encode(), "sha256").hexdigest()


async def premium_object(store: ObjectStore, entry_id: str) -> str:
    """The object key of a premium track; NotFound if there is none."""
    if not _ENTRY_ID.match(entry_id) or not entry_id.startswith("premium-"):
        raise NotFound("no such premium track")
    try:
        record = json.loads(await store.get(record_key(entry_id)))
    except NotFound:
        raise NotFound("no such premium track") from None
    except ValueError:
        raise ServiceUnavailable("the track's record is damaged") from None
    return record["objectKey"]


async def signed_url(store: ObjectStore, settings: Settings, entry_id: str, base: str) -> dict:
    key = await premium_object(store, entry_id)
    expires = int(time.time()) + settings.catalog_signed_seconds
    if hasattr(store, "presigned_url"):
        url = await store.presigned_url(key, settings.catalog_signed_seconds)
    else:
        url = f"{base}/tracks/premium/{entry_id}/audio?exp={expires}&sig={_signature(settings, entry_id, expires)}"
    at = datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
    return {"signedUrl": url, "expiresAt": at}


def check_signature(settings: Settings, entry_id: str, exp: str | None, sig: str | None) -> None:
    """Forbidden unless exp/sig are this entry's signature and not expired."""
    if not exp or not sig or not exp.isascii() or not exp.isdigit() or len(exp) > 12:
        raise Forbidden("invalid signature")
    if not hmac.compare_digest(_signature(settings, entry_id, int(exp)).encode(), sig.encode("utf-8", "replace")):
        raise Forbidden("invalid signature")
    if int(exp) < time.time():
        raise Forbidden("this link has expired")


async def start_premium(client: Client, settings: Settings, data: PremiumTrackInput) -> str:
    """Start the premium workflow of this day and track id (or find it running or done); its workflow id."""
    workflow_id = premium_workflow_id(data.date, data.track_id)
    try:
        await start_workflow(client, PremiumTrackWorkflow.run, data, id=workflow_id, settings=settings,
                             summary=f"premium {data.category} {data.track_id}",
                             id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)  # fmt: skip
    except WorkflowAlreadyStartedError:
        pass
    return workflow_id
