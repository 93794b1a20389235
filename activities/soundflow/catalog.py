"""Catalog entries in the seed's schema, the catalog files built from the track records, and their validation."""

import asyncio
import json
import re

import miniaudio
import numpy as np

from activities.soundflow.render import encode
from contracts.catalog import CATEGORIES, ENTRY_ID_PATTERN, TrackSpec, ValidateCatalogsResult
from smol.errors import NotFound
from smol.store import FileStore, ObjectStore, S3Store

RECORDS = "catalog/tracks/"
FREE, PREMIUM, ALL = "catalog/free.json", "catalog/premium.json", "catalog/all.json"
FIELDS = {"id": str, "title": str, "tier": str, "date": str, "category": str, "genre": str, "bpm": int, "key": str,
          "durationSec": int, "goalTags": list, "natureTags": list, "energyMin": int, "energyMax": int,
          "ambienceMin": int, "ambienceMax": int, "objectKey": str, "url": str}  # fmt: skip
PRIVATE = ("objectKey", "url")  # never in a premium entry of a catalog
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)


def by_category_key(slug: str) -> str:
    return f"catalog/by-category/{slug}.json"


def entry_id(tier: str, date: str, track_id: str) -> str:
    return f"{tier}-{date}-{track_id}"


def object_key(tier: str, date: str, entry_id: str) -> str:
    return f"audio/{tier}/{date}/{entry_id}.mp3"


def record_key(entry_id: str) -> str:
    return f"{RECORDS}{entry_id}.json"


def title(track_id: str, date: str) -> str:
    return f"{track_id.replace('_', ' ').title()} - {date}"


def entry(spec: TrackSpec, date: str, tier: str, key: str, seconds: float) -> dict:
    """A track's record: its catalog entry with the object key (the url is added when catalogs are written)."""
    return {
        "id": entry_id(tier, date, spec.id), "title": title(spec.id, date), "tier": tier, "date": date,
        "category": spec.category, "genre": spec.genre, "bpm": spec.bpm, "key": spec.key,
        "durationSec": int(round(seconds)), "goalTags": spec.goal_tags, "natureTags": spec.nature_tags,
        "energyMin": spec.energy_min, "energyMax": spec.energy_max, "ambienceMin": spec.ambience_min,
        "ambienceMax": spec.ambience_max, "objectKey": key,
    }  # fmt: skip


def url_base(settings) -> str:
    """Free tracks' url is this + objectKey. Without a configured base it is our own /catalog/ route, relative when
    the API's public URL is not known either (the API makes it absolute when it serves the catalog)."""
    if settings.catalog_public_base_url:
        return settings.catalog_public_base_url
    return (settings.public_url or "").rstrip("/") + "/catalog/"


def public(entry: dict, base: str) -> dict:
    """The entry as catalogs show it: free ones with their url, premium ones without url or object key."""
    shown = {name: value for name, value in entry.items() if name in FIELDS}
    if shown["tier"] == "premium":
        return {name: value for name, value in shown.items() if name not in PRIVATE}
    return {**shown, "url": base + shown["objectKey"]}


async def record_keys(store: ObjectStore) -> list[str]:
    """The keys of every track record (listing only that prefix where the store can)."""
    if isinstance(store, FileStore):
        folder = store.root / RECORDS
        paths = await asyncio.to_thread(lambda: sorted(folder.glob("*.json")) if folder.is_dir() else [])
        return [RECORDS + path.name for path in paths]
    if isinstance(store, S3Store):
        s3 = await store._s3()
        keys = []
        async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket,
                                                                       Prefix=store.prefix + RECORDS):  # fmt: skip
            keys += [item["Key"][len(store.prefix) :] for item in page.get("Contents", [])]
        return sorted(keys)
    return sorted([key async for key in store.keys() if key.startswith(RECORDS)])


def order(entries: list[dict]) -> list[dict]:
    """Newest day first; within a day, the categories' order, free before premium."""
    categories = list(CATEGORIES)
    return sorted(sorted(entries, key=lambda e: (categories.index(e["category"]) if e["category"] in categories else 99,
                                                 e["tier"] != "free", e["id"])),
                  key=lambda e: e["date"], reverse=True)  # fmt: skip


async def read_records(store: ObjectStore) -> list[dict]:
    entries = []
    for key in await record_keys(store):
        try:
            entries.append(json.loads(await store.get(key)))
        except NotFound:
            continue  # deleted meanwhile
    return order(entries)


def catalog_files(entries: list[dict], base: str) -> dict[str, list[dict]]:
    shown = [public(e, base) for e in entries]
    files = {ALL: shown, FREE: [e for e in shown if e["tier"] == "free"],
             PREMIUM: [e for e in shown if e["tier"] == "premium"]}  # fmt: skip
    for name, slug in CATEGORIES.items():
        files[by_category_key(slug)] = [e for e in shown if e["category"] == name]
    return files


async def write_catalogs(store: ObjectStore, entries: list[dict], base: str) -> None:
    """Each file is written whole (the store writes to a temporary name and renames; S3 puts are atomic)."""
    files = catalog_files(entries, base)
    await asyncio.gather(*(store.put(key, json.dumps(value, indent=1).encode(), "application/json")
                           for key, value in files.items()))  # fmt: skip


def decode(audio: bytes) -> np.ndarray:
    """Stereo float32 samples at 44.1 kHz; ValueError when the bytes are not decodable audio."""
    try:
        decoded = miniaudio.decode(audio, output_format=miniaudio.SampleFormat.FLOAT32, nchannels=2,
                                   sample_rate=44100)  # fmt: skip
    except miniaudio.DecodeError as exc:
        raise ValueError(str(exc)) from None
    samples = np.frombuffer(decoded.samples, dtype=np.float32).reshape(-1, 2)
    if not len(samples):
        raise ValueError("no audio")
    return samples


def duration(audio: bytes) -> float:
    return len(decode(audio)) / 44100


def transcode(audio: bytes, spec: TrackSpec, *, bitrate: int, quality: int, title: str, comment: str):
    """Provider audio re-encoded as the catalog's MP3, and its length in seconds."""
    samples = decode(audio)
    mp3 = encode(samples, bitrate=bitrate, quality=quality, title=title, artist="SoundFlow", spec=spec,
                 comment=comment)  # fmt: skip
    return mp3, len(samples) / 44100


def entry_problems(entry, tier: str | None = None) -> list[str]:
    if not isinstance(entry, dict):
        return [f"an entry is not an object: {entry!r:.80}"]
    name = entry.get("id", "?")
    wanted = {k: t for k, t in FIELDS.items() if entry.get("tier") != "premium" or k not in PRIVATE}
    problems = [f"{name}: {'missing' if k not in entry else 'not a ' + t.__name__} {k}"
                for k, t in wanted.items() if not isinstance(entry.get(k), t)]  # fmt: skip
    problems += [f"{name}: unexpected field {k}" for k in entry if k not in wanted]
    if not _ENTRY_ID.match(str(name)):
        problems.append(f"{name}: malformed id")
    if entry.get("tier") not in ("free", "premium") or (tier and entry.get("tier") != tier):
        problems.append(f"{name}: tier {entry.get('tier')!r} does not belong here")
    if entry.get("category") not in CATEGORIES:
        problems.append(f"{name}: unknown category {entry.get('category')!r}")
    return problems


async def validate(store: ObjectStore, decode_dates: list[str] | None = None) -> ValidateCatalogsResult:
    """Schema of every entry, the five kinds of file consistent with each other and with the track records, every
    object present, and the audio of `decode_dates` (None: all) decodable and as long as its entry says (± 1 s)."""
    problems: list[str] = []
    files = {}
    for key in [ALL, FREE, PREMIUM, *(by_category_key(slug) for slug in CATEGORIES.values())]:
        try:
            files[key] = json.loads(await store.get(key))
        except NotFound:
            problems.append(f"{key} is missing")
            files[key] = []
        except ValueError:
            problems.append(f"{key} is not JSON")
            files[key] = []
        if not isinstance(files[key], list):
            problems.append(f"{key} is not a list")
            files[key] = []
    for key, entries in files.items():
        tier = {FREE: "free", PREMIUM: "premium"}.get(key)
        for item in entries:
            problems += [f"{key}: {p}" for p in entry_problems(item, tier)]
    if problems:
        return ValidateCatalogsResult(len(files[ALL]), 0, problems)
    everything = {e["id"]: e for e in files[ALL]}
    if len(everything) != len(files[ALL]):
        problems.append(f"{ALL} repeats an id")
    expected = catalog_files(list(everything.values()), "")
    for key, entries in files.items():
        if key == ALL:
            continue
        if sorted(e["id"] for e in entries) != sorted(e["id"] for e in expected[key]):
            problems.append(f"{key} does not list the same tracks as {ALL}")
        problems += [f"{key}: {e['id']} differs from {ALL}" for e in entries if e != everything.get(e["id"])]
    records = {e["id"]: e for e in await read_records(store)}
    if set(records) != set(everything):
        missing, extra = set(records) - set(everything), set(everything) - set(records)
        problems.append(f"{ALL} and the track records differ: not listed {sorted(missing)[:5]}, "
                        f"without record {sorted(extra)[:5]}")  # fmt: skip
    decoded = 0
    for record in records.values():
        key = record.get("objectKey", "")
        if not await store.exists(key):
            problems.append(f"{record['id']}: object {key} is missing")
            continue
        if decode_dates is not None and record["date"] not in decode_dates:
            continue
        try:
            seconds = await asyncio.to_thread(duration, await store.get(key))
        except ValueError as exc:
            problems.append(f"{record['id']}: {key} does not decode ({exc})")
            continue
        decoded += 1
        if abs(seconds - record["durationSec"]) > 1:
            problems.append(f"{record['id']}: lasts {seconds:.1f} s, the entry says {record['durationSec']} s")
    return ValidateCatalogsResult(len(everything), decoded, problems)


def entry_path_ok(entry_id_: str) -> bool:
    return bool(_ENTRY_ID.match(entry_id_))

