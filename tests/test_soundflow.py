"""The SoundFlow catalog on the real stack: a day of tracks, the catalogs, idempotency, the schedule and its
backfill, premium tracks through a fake Replicate, signed URLs and the catalog routes."""

import asyncio
import json
import time
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from temporalio.client import ScheduleOverlapPolicy
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.soundflow.catalog import validate
from activities.soundflow.plan import load_plan
from api.services.catalog import _signature
from commands.catalog import backfill, ensure_schedule
from contracts.catalog import CATEGORIES, CatalogDayInput, PremiumTrackInput
from tests.fakes import FakeReplicate
from tests.support_soundflow import ambience, duration, objects, read, read_json, run_day, wait_until
from workflows.catalog import CatalogDayWorkflow, PremiumTrackWorkflow, day_workflow_id

DAY = "2031-03-03"  # a Monday
SECONDS = 8


@pytest.fixture(scope="module")
async def day(temporal):
    return await run_day(temporal, DAY, SECONDS, workflow_id=day_workflow_id(DAY))


async def test_a_day_makes_five_tracks_that_follow_the_plan(stack, day):
    plan = {t.id: t for t in load_plan().day(DAY)}
    assert [t.entry_id for t in day.tracks] == [f"free-{DAY}-{track_id}" for track_id in plan]
    assert all(t.rendered for t in day.tracks)
    for track in day.tracks:
        assert track.object_key == f"audio/free/{DAY}/{track.entry_id}.mp3"
        mp3 = read(stack, track.object_key)
        assert abs(duration(mp3) - SECONDS) < 0.1
        spec = plan[track.entry_id.removeprefix(f"free-{DAY}-")]
        tags = ID3(objects(stack).root / track.object_key)
        assert str(tags["TCON"]) == spec.genre and str(tags["TBPM"]) == str(spec.bpm) and str(tags["TKEY"]) == spec.key
        assert MP3(objects(stack).root / track.object_key).info.bitrate == 192000
    nature = ambience(read(stack, f"audio/free/{DAY}/free-{DAY}-nature_daily.mp3"))
    deep_work = ambience(read(stack, f"audio/free/{DAY}/free-{DAY}-deep_work_daily.mp3"))
    assert nature > 20 * deep_work, (nature, deep_work)


async def test_the_catalogs_are_valid_and_agree(stack, day, http):
    result = await validate(objects(stack))
    assert result.problems == [] and result.decoded >= 5
    everything = read_json(stack, "catalog/all.json")
    mine = [e for e in everything if e["date"] == DAY]
    assert [e["category"] for e in mine] == list(CATEGORIES)
    deep = mine[0]
    assert set(deep) == {"id", "title", "tier", "date", "category", "genre", "bpm", "key", "durationSec", "goalTags",
                         "natureTags", "energyMin", "energyMax", "ambienceMin", "ambienceMax", "objectKey", "url"}
    assert deep["title"] == f"Deep Work Daily - {DAY}" and deep["durationSec"] == SECONDS and deep["genre"] == "deep"
    assert deep["url"] == f"/catalog/{deep['objectKey']}"  # no public base configured: our route, made absolute
    served = (await http.get("/catalog/all")).json()
    by_id = {e["id"]: e for e in served}
    assert by_id[deep["id"]]["url"] == f"{http.base_url}/catalog/{deep['objectKey']}".replace("//catalog", "/catalog")
    audio = await http.get(by_id[deep["id"]]["url"])
    assert audio.status_code == 200 and audio.content == read(stack, deep["objectKey"])
    union = []
    for slug in CATEGORIES.values():
        response = await http.get(f"/catalog/by-category/{slug}")
        assert response.status_code == 200
        union += response.json()
    assert sorted(e["id"] for e in union) == sorted(by_id)
    free = (await http.get("/catalog/free")).json()
    assert {e["id"] for e in free} == {e["id"] for e in served if e["tier"] == "free"}


async def test_the_same_day_twice_makes_nothing_new(stack, day, temporal):
    before = {t.object_key: (objects(stack).root / t.object_key).stat().st_ino for t in day.tracks}
    with pytest.raises(WorkflowAlreadyStartedError):
        await temporal.start_workflow(CatalogDayWorkflow.run, CatalogDayInput(DAY, SECONDS), id=day_workflow_id(DAY),
                                      task_queue="smol-tests",
                                      id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)  # fmt: skip
    again = await run_day(temporal, DAY, SECONDS)  # another trigger (the schedule, a backfill) for the same day
    assert [t.rendered for t in again.tracks] == [False] * 5
    assert {k: (objects(stack).root / k).stat().st_ino for k in before} == before
    assert len(list((objects(stack).root / "audio/free" / DAY).iterdir())) == 5


async def test_catalog_routes_unknown_slug_and_etag(http):
    for slug in ("unknown", "all", "free", "Deep-Work", "deep work", "..", "%00"):
        assert (await http.get(f"/catalog/by-category/{slug}")).status_code == 404
    first = await http.get("/catalog/by-category/nature")
    assert first.status_code == 200 and first.headers["etag"]
    again = await http.get("/catalog/by-category/nature", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    for path in ("/catalog/audio/free/2031-03-03/x.mp3", "/catalog/audio/free/../../etc/passwd",
                 "/catalog/audio/premium/a/b.mp3", "/tracks/premium/%2e%2e/audio"):  # fmt: skip
        assert (await http.get(path)).status_code in (403, 404)


async def test_the_schedule_exists_after_worker_start(temporal, stack):
    description = None
    deadline = time.monotonic() + 60
    while description is None:  # the session's worker may still be starting
        try:
            description = await temporal.get_schedule_handle("smol-catalog-daily").describe()
        except RPCError:
            assert time.monotonic() < deadline, "no schedule after the worker started"
            await asyncio.sleep(0.5)
    schedule = description.schedule
    (calendar,) = schedule.spec.calendars
    assert [(r.start, r.end) for r in calendar.hour] == [(2, 2)] and [(r.start, r.end) for r in calendar.minute] == [
        (10, 10)
    ]
    assert schedule.spec.time_zone_name == "UTC"
    assert schedule.policy.catchup_window.total_seconds() == 48 * 3600
    assert schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL
    assert schedule.action.workflow == "CatalogDayWorkflow"
    assert not schedule.state.paused


async def test_backfill_makes_each_day_of_the_range(stack, temporal):
    import datetime as dt

    schedule_id = f"test-catalog-{uuid.uuid4().hex[:8]}"
    await ensure_schedule(temporal, stack.settings, schedule_id, seconds=5, task_queue="smol-tests")
    try:
        await backfill(temporal, schedule_id, dt.date(2031, 5, 1), dt.date(2031, 5, 2))
        records = objects(stack).root / "catalog/tracks"

        def made() -> int:
            return sum(1 for day in ("2031-05-01", "2031-05-02") for _ in records.glob(f"free-{day}-*.json"))

        await wait_until(lambda: made() == 10, timeout=120)
        assert not list(records.glob("free-2031-04-30-*")) and not list(records.glob("free-2031-05-03-*"))

        async def catalogued() -> bool:
            dates = {e["date"] for e in read_json(stack, "catalog/all.json")}
            return {"2031-05-01", "2031-05-02"} <= dates

        deadline = time.monotonic() + 60
        while not await catalogued():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
    finally:
        await temporal.get_schedule_handle(schedule_id).delete()


@pytest.fixture(scope="module")
def replicate(audio):
    fake = FakeReplicate(audio, ready_after=0.5)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
async def premium(stack, temporal, replicate):
    """A premium track made through the fake Replicate by a worker whose premium chain starts with musicgen."""
    queue = f"test-premium-{uuid.uuid4().hex[:8]}"
    worker = stack.start_worker(task_queue=queue, catalog_schedule="false", catalog_premium_providers="musicgen,local",
                                replicate_url=replicate.url, replicate_api_token=FakeReplicate.TOKEN)  # fmt: skip
    try:
        data = PremiumTrackInput("nature", "rainy_focus_1", 12, "musicgen-stereo-medium", DAY)
        result = await temporal.execute_workflow(PremiumTrackWorkflow.run, data, id=f"test-premium-{uuid.uuid4().hex}",
                                                 task_queue=queue)  # fmt: skip
    finally:
        worker.terminate()
        worker.wait()
    return result


async def test_premium_through_replicate(stack, premium, replicate, http):
    assert premium.provider == "musicgen" and premium.entry_id == f"premium-{DAY}-rainy_focus_1"
    assert premium.object_key == f"audio/premium/{DAY}/premium-{DAY}-rainy_focus_1.mp3"
    (created,) = [r for r in replicate.requests if r["method"] == "POST"]
    sent = json.loads(created["body"])["input"]
    assert sent["duration"] == 12 and sent["model_version"] == "stereo-melody-large" and "ambient" in sent["prompt"]
    assert MP3(objects(stack).root / premium.object_key).info.bitrate == 320000
    assert str(ID3(objects(stack).root / premium.object_key)["TCON"]) == "ambient"
    listed = {e["id"]: e for e in (await http.get("/catalog/premium")).json()}
    entry = listed[premium.entry_id]
    assert "url" not in entry and "objectKey" not in entry and entry["category"] == "Nature"
    assert entry["tier"] == "premium" and entry["durationSec"] == round(duration(read(stack, premium.object_key)))
    for path in ("/catalog/all", "/catalog/by-category/nature"):
        shown = {e["id"]: e for e in (await http.get(path)).json()}[premium.entry_id]
        assert "url" not in shown and "objectKey" not in shown
    assert premium.entry_id not in {e["id"] for e in (await http.get("/catalog/free")).json()}
    assert "objectKey" not in read(stack, "catalog/premium.json").decode()
    assert (await validate(objects(stack))).problems == []


async def test_signed_urls(stack, premium, http):
    path = f"/tracks/premium/{premium.entry_id}/signed"
    premium_token = {"Authorization": "Bearer " + _premium_token(stack)}
    assert (await http.get(path)).status_code == 401
    assert (await http.get(path, headers=stack.auth("GNORMAL"))).status_code == 403
    assert (await http.get(path, headers={"Authorization": "Bearer nonsense"})).status_code == 401
    assert (await http.get(f"/tracks/premium/premium-{DAY}-nothing_here/signed", headers=premium_token)).status_code \
        == 404  # fmt: skip
    assert (await http.get(f"/tracks/premium/free-{DAY}-nature_daily/signed", headers=premium_token)).status_code \
        == 404  # fmt: skip
    answer = await http.get(path, headers=premium_token)
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert set(signed) == {"signedUrl", "expiresAt"}
    left = datetime.fromisoformat(signed["expiresAt"].replace("Z", "+00:00")).timestamp() - time.time()
    assert 3590 < left <= 3600
    async with httpx.AsyncClient(timeout=30) as anyone:  # no token: the signature is the credential
        got = await anyone.get(signed["signedUrl"])
        assert got.status_code == 200 and got.content == read(stack, premium.object_key)
        altered = signed["signedUrl"][:-1] + ("0" if signed["signedUrl"][-1] != "0" else "1")
        assert (await anyone.get(altered)).status_code == 403
        later = signed["signedUrl"].replace("exp=", "exp=1")
        assert (await anyone.get(later)).status_code == 403
        expires = int(time.time()) - 1  # a link signed with our key whose hour is over
        expired = f"{http.base_url}{path.removesuffix('/signed')}/audio?exp={expires}&sig="
        expired += _signature(stack.settings, premium.entry_id, expires)
        response = await anyone.get(expired)
        assert response.status_code == 403 and "expired" in response.text
        for query in ("", "?exp=abc&sig=def", "?exp=99999999999999999999&sig=00", "?sig=&exp=",
                      "?exp=99999999999&sig=%C3%A9", "?exp=99999999999&sig=%00"):
            assert (await anyone.get(f"{http.base_url}{path.removesuffix('/signed')}/audio{query}")).status_code == 403


def _premium_token(stack) -> str:
    from smol.tokens import issue_token

    return issue_token(stack.settings, "GPREMIUM", premium=True)


async def test_operators_request_premium_over_http(stack, http, temporal):
    api, url = stack.start_api(admin_addresses='["GOPERATOR"]')
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = {"category": "Flow State", "track_id": "sprint_2", "duration": 6}
            assert (await client.post("/catalog/premium", json=body)).status_code == 401
            assert (await client.post("/catalog/premium", json=body, headers=stack.auth("GSOMEONE"))).status_code \
                == 403  # fmt: skip
            for wrong in ({**body, "category": "Polka"}, {**body, "track_id": "../x"}, {**body, "duration": 9999},
                          {**body, "model": "gpt"}, {"category": "study"}):  # fmt: skip
                response = await client.post("/catalog/premium", json=wrong, headers=stack.auth("GOPERATOR"))
                assert response.status_code in (400, 422), (wrong, response.text)
            response = await client.post("/catalog/premium", json=body, headers=stack.auth("GOPERATOR"))
            assert response.status_code == 202, response.text
            started = response.json()
    finally:
        api.terminate()
        api.wait()
    result = await temporal.get_workflow_handle_for(PremiumTrackWorkflow.run, started["workflowId"]).result()
    assert result.provider == "local" and result.entry_id == started["id"]
    assert abs(duration(read(stack, result.object_key)) - 6) < 0.1


async def test_s3_mode_catalogs_and_presigned_urls(stack, s3_endpoint, audio):
    from activities.soundflow import catalog as catalogs
    from activities.soundflow.plan import load_plan
    from smol.store import S3Store
    from tests.support import CREDENTIALS, make_bucket

    bucket = make_bucket(s3_endpoint)
    store = S3Store(bucket, "soundflow", endpoint_url=s3_endpoint, **CREDENTIALS)
    spec = load_plan().day(DAY, 2)[1]
    for tier in ("free", "premium"):
        entry_id = catalogs.entry_id(tier, DAY, spec.id)
        key = catalogs.object_key(tier, DAY, entry_id)
        await store.put(key, audio, "audio/mpeg")
        await store.put(catalogs.record_key(entry_id), json.dumps(catalogs.entry(spec, DAY, tier, key, 2)).encode())
    await catalogs.write_catalogs(store, await catalogs.read_records(store), "https://cdn.example/")
    assert (await validate(store)).problems == []
    api, url = stack.start_api(object_store=f"s3://{bucket}/soundflow", s3_endpoint_url=s3_endpoint,
                               s3_access_key_id="test", s3_secret_access_key="test")  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            free = (await client.get("/catalog/free")).json()
            assert [e["url"] for e in free] == [f"https://cdn.example/audio/free/{DAY}/free-{DAY}-{spec.id}.mp3"]
            path = f"/tracks/premium/premium-{DAY}-{spec.id}/signed"
            assert (await client.get(path, headers=stack.auth("GNORMAL"))).status_code == 403
            signed = (await client.get(path, headers={"Authorization": "Bearer " + _premium_token(stack)})).json()
            assert signed["signedUrl"].startswith(f"{s3_endpoint}/{bucket}/soundflow/audio/premium/{DAY}/")
            query = parse_qs(urlsplit(signed["signedUrl"]).query)
            assert "Signature" in query or "X-Amz-Signature" in query
            if "Expires" in query:  # signature version 2: the moment it expires
                expires_at = datetime.fromisoformat(signed["expiresAt"].replace("Z", "+00:00")).timestamp()
                assert abs(int(query["Expires"][0]) - expires_at) <= 5
            else:
                assert query["X-Amz-Expires"] == ["3600"]
            got = await client.get(signed["signedUrl"])
            assert got.status_code == 200 and got.content == audio
    finally:
        api.terminate()
        api.wait()
        await store.close()
