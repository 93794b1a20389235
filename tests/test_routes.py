"""The catalog routes of the contract: owner-only mutations, likes, playlists, mixtapes, retry and delete."""

import asyncio

import httpx
import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.failures import smol_worker
from contracts.smol import Payload, SavePayloadInput, SavePayloadResult
from smol import repo
from tests.support import _stop, insert_smol, wait_for
from tests.workers import RefusingSongs, activities_with, start_smol, worker_for
from workflows.smol import SmolWorkflow
from workflows.summary import start_summary

OWNER, OTHER = "GROUTEOWNER", "GROUTEOTHER"


async def make_smol(stack, http, prompt: str, address: str = OWNER, **fields) -> dict:
    created = await http.post("/", json={"prompt": prompt, **fields}, headers=stack.auth(address))
    assert created.status_code == 200, created.text
    return await wait_for(http, created.text, stack.auth(address))


@pytest.fixture(scope="module")
async def two_smols(stack, http):
    public, private = await asyncio.gather(
        make_smol(stack, http, "a public synthwave ride", playlist="road trip"),
        make_smol(stack, http, "a private lofi diary", public=False),
    )
    return public["d1"], private["d1"]


async def test_created_lists_the_callers_smols_private_ones_too(stack, http, two_smols):
    public, private = two_smols
    mine = [s["Id"] for s in (await http.get("/created", headers=stack.auth(OWNER))).json()["smols"]]
    assert {public["Id"], private["Id"]} <= set(mine)
    theirs = [s["Id"] for s in (await http.get("/created", headers=stack.auth(OTHER))).json()["smols"]]
    assert not {public["Id"], private["Id"]} & set(theirs)
    assert (await http.get("/created")).status_code == 401


async def test_likes_toggle_and_list(stack, http, two_smols):
    public, private = two_smols
    other = stack.auth(OTHER)
    assert (await http.put(f"/likes/{public['Id']}", headers=other)).status_code == 204
    assert public["Id"] in (await http.get("/likes", headers=other)).json()
    assert (await http.get(f"/{public['Id']}", headers=other)).json()["liked"] is True
    liked = (await http.get("/liked", headers=other)).json()
    assert [s["Id"] for s in liked["smols"]] == [public["Id"]] and "pagination" in liked
    assert (await http.put(f"/likes/{public['Id']}", headers=other)).status_code == 204
    assert public["Id"] not in (await http.get("/likes", headers=other)).json()
    assert (await http.put(f"/likes/{'f' * 64}", headers=other)).status_code == 404
    assert (await http.put(f"/likes/{private['Id']}", headers=other)).status_code == 404
    assert (await http.put(f"/likes/{public['Id']}")).status_code == 401


async def test_a_liked_smol_made_private_leaves_the_likes_and_its_like_can_be_undone(stack, http, pool):
    smol = await insert_smol(pool, address=OWNER)
    other = stack.auth(OTHER)
    assert (await http.put(f"/likes/{smol['id']}", headers=other)).status_code == 204
    assert smol["id"] in (await http.get("/likes", headers=other)).json()
    assert (await http.put(f"/{smol['id']}", headers=stack.auth(OWNER))).status_code == 204  # made private
    assert (await repo.visible_smol(pool, smol["id"], OTHER)) is None
    assert smol["id"] not in (await http.get("/likes", headers=other)).json()  # as if it were not there, as /liked
    assert (await http.put(f"/likes/{smol['id']}", headers=other)).status_code == 204  # undone
    assert not await repo.is_liked(pool, smol["id"], OTHER)


async def test_mixtapes_one_address_makes_are_limited_an_hour(stack, http, two_smols):
    public, _ = two_smols
    api, url = stack.start_api(mixtapes_per_hour=2)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as limited:
            maker, body = stack.auth("GMIXTAPER"), {"title": "t", "desc": "", "smols": [public["Id"]]}
            unknown = await limited.post("/mixtapes", json={**body, "smols": ["a" * 64]}, headers=maker)
            assert unknown.status_code == 400  # (refused input uses up nothing)
            replayed = {**maker, "Idempotency-Key": "once"}
            made = [await limited.post("/mixtapes", json=body, headers=h) for h in (replayed, replayed, maker)]
            assert [m.status_code for m in made] == [201, 201, 201] and made[0].text == made[1].text
            refused = await limited.post("/mixtapes", json=body, headers=maker)
            assert refused.status_code == 429 and "2 new mixtapes an hour" in refused.text, refused.text
            assert 3000 < int(refused.headers["retry-after"]) <= 3600
            assert (await limited.post("/mixtapes", json=body, headers=stack.auth("GOTHERMIXER"))).status_code == 201
    finally:
        _stop(api)


async def test_visibility_toggle_is_owner_only_and_refused_when_flagged(stack, http, two_smols, pool):
    public, _ = two_smols
    assert (await http.put(f"/{public['Id']}", headers=stack.auth(OTHER))).status_code == 404
    assert (await http.put(f"/{public['Id']}")).status_code == 401
    assert (await http.put(f"/{public['Id']}", headers=stack.auth(OWNER))).status_code == 204
    assert await pool.fetchval("SELECT public FROM smols WHERE id = $1", public["Id"]) is False
    assert (await http.put(f"/{public['Id']}", headers=stack.auth(OWNER))).status_code == 204
    assert await pool.fetchval("SELECT public FROM smols WHERE id = $1", public["Id"]) is True

    flagged = (await make_smol(stack, http, "gore and murder", address=OWNER))["d1"]
    response = await http.put(f"/{flagged['Id']}", headers=stack.auth(OWNER))
    assert response.status_code == 400 and "unsafe" in response.text
    assert await pool.fetchval("SELECT public FROM smols WHERE id = $1", flagged["Id"]) is False


async def test_swap_makes_the_second_song_first(stack, http, two_smols):
    _, private = two_smols
    first, second = private["Song_1"], private["Song_2"]
    assert (await http.put(f"/{private['Id']}/{second}", headers=stack.auth(OTHER))).status_code == 404
    assert (await http.put(f"/{private['Id']}/{first}", headers=stack.auth(OWNER))).status_code == 404
    assert (await http.put(f"/{private['Id']}/{second}", headers=stack.auth(OWNER))).status_code == 204
    d1 = (await http.get(f"/{private['Id']}", headers=stack.auth(OWNER))).json()["d1"]
    assert (d1["Song_1"], d1["Song_2"]) == (second, first)


async def test_playlist_lists_its_public_smols_and_their_users(stack, http, two_smols, pool):
    public, _ = two_smols
    await pool.execute("INSERT INTO users (username, address) VALUES ('roadie', $1) ON CONFLICT DO NOTHING", OWNER)
    body = (await http.get("/playlist/road trip")).json()
    assert [s["Id"] for s in body["smols"]] == [public["Id"]]
    assert set(body["smols"][0]) == {"Id", "Title", "Song_1", "Address", "Plays", "Views", "Mint_Token", "Mint_Amm",
                                     "Created_At"}  # fmt: skip
    assert body["users"] == [{"Username": "roadie", "Address": OWNER}]
    assert (await http.get("/playlist/nothing here")).json() == {
        "smols": [], "users": [], "pagination": {"nextCursor": None, "hasMore": False}
    }  # fmt: skip


async def test_mixtapes_create_read_update_delete(stack, http, two_smols):
    public, private = two_smols
    owner, other = stack.auth(OWNER), stack.auth(OTHER)
    body = {"title": "Drive", "desc": "night\n\tand day", "smols": [public["Id"], private["Id"]]}
    created = await http.post("/mixtapes", json=body, headers=owner)
    assert created.status_code == 201
    mixtape_id = created.json()["id"]
    assert len(mixtape_id) == 16
    assert (await http.get(f"/mixtapes/{mixtape_id}")).json()["Desc"] == "night\n\tand day"  # (lines are fine)

    listed = (await http.get("/mixtapes")).json()
    # (newest first to the second, as the original stores it: another test's mixtape of the same second may come first)
    listed_here = [tape for tape in listed[:10] if tape["Id"] == mixtape_id]
    assert [tape["Smols"] for tape in listed_here] == [[public["Id"]]]  # the private one is the owner's
    as_owner = (await http.get("/mixtapes", headers=owner)).json()[:10]
    assert [tape["Smols"] for tape in as_owner if tape["Id"] == mixtape_id] == [body["smols"]]
    anonymous = (await http.get(f"/mixtapes/{mixtape_id}")).json()
    assert [t["Id"] for t in anonymous["Smols"]] == [public["Id"]]  # a private smol only shows to its owner
    assert "synthwave" in anonymous["Smols"][0]["Tags"]
    assert [t["Id"] for t in (await http.get(f"/mixtapes/{mixtape_id}", headers=owner)).json()["Smols"]] == body[
        "smols"
    ]

    assert (await http.put(f"/mixtapes/{mixtape_id}", json={**body, "title": "x"}, headers=other)).status_code == 404
    assert (
        await http.put(f"/mixtapes/{mixtape_id}", json={**body, "title": "Drive 2"}, headers=owner)
    ).status_code == 204
    assert (await http.get(f"/mixtapes/{mixtape_id}")).json()["Title"] == "Drive 2"
    assert (await http.delete(f"/mixtapes/{mixtape_id}", headers=other)).status_code == 404
    assert (await http.delete(f"/mixtapes/{mixtape_id}", headers=owner)).status_code == 204
    assert (await http.get(f"/mixtapes/{mixtape_id}")).status_code == 404


@pytest.mark.parametrize(
    "body, status",
    [
        ({"title": "t", "desc": "d", "smols": []}, 422),
        ({"title": "", "desc": "d", "smols": ["a" * 64]}, 422),
        ({"title": "t", "desc": "d", "smols": ["not-an-id"]}, 422),
        ({"title": "t", "desc": "d", "smols": ["a" * 64]}, 400),
        ({"desc": "d"}, 422),
        ({"title": "\u202egnp.exe", "desc": "d", "smols": ["a" * 64]}, 422),  # (would reorder what is around it)
        ({"title": "t", "desc": "fine\nlines \u2066hidden", "smols": ["a" * 64]}, 422),
        ({"title": "tab\there", "desc": "", "smols": ["a" * 64]}, 422),
    ],
)
async def test_bad_mixtapes_are_refused(stack, http, body, status):
    response = await http.post("/mixtapes", json=body, headers=stack.auth(OWNER))
    assert response.status_code == status, response.text
    assert (await http.post("/mixtapes", json=body)).status_code in (401, 422)


async def test_unknown_mixtape_is_404(http):
    assert (await http.get("/mixtapes/0123456789abcdef")).status_code == 404
    assert (await http.get("/mixtapes/not-hex")).status_code == 404


async def test_delete_leaves_no_row_and_no_object(stack, http, pool):
    d1 = (await make_smol(stack, http, "a doomed jazz tune", playlist="doomed"))["d1"]
    smol_id = d1["Id"]
    await http.put(f"/likes/{smol_id}", headers=stack.auth(OTHER))
    mixtape = (await http.post("/mixtapes", json={"title": "m", "smols": [smol_id]}, headers=stack.auth(OTHER))).json()
    store_root = stack.settings.object_root()
    keys = [f"{smol_id}.png", f"{d1['Song_1']}.mp3", f"{d1['Song_2']}.mp3"]
    assert all((store_root / key).exists() for key in keys)

    assert (await http.delete(f"/{smol_id}")).status_code == 401
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 204

    assert not any((store_root / key).exists() for key in keys)
    for table, column in [("smols", "id"), ("likes", "id"), ("playlists", "id"), ("smol_steps", "smol_id"),
                          ("smol_songs", "smol_id"), ("provider_calls", "smol_id")]:  # fmt: skip
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", smol_id) == 0, table
    assert await pool.fetchval("SELECT count(*) FROM mixtapes WHERE $1 = ANY(smols)", smol_id) == 0
    assert (await http.get(f"/mixtapes/{mixtape['id']}")).json()["Smols"] == []
    assert (await http.get(f"/{smol_id}")).status_code == 404
    assert (await http.get(f"/{smol_id}/events")).status_code == 404
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 404


@pytest.mark.slow
@pytest.mark.timeout(360)
async def test_delete_removes_the_workflow_history_too(stack, http, temporal):
    smol_id = (await make_smol(stack, http, "a secret prompt nobody should keep"))["d1"]["Id"]
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 204
    for _ in range(1200):  # Temporal deletes asynchronously: 30 s to a few minutes on a busy dev server
        try:
            await temporal.get_workflow_handle(smol_id).describe()
        except RPCError as exc:
            assert exc.status == RPCStatusCode.NOT_FOUND
            return
        await asyncio.sleep(0.25)
    raise AssertionError("the smol's workflow history (and its prompt) is still in Temporal")


async def test_retry_through_the_api_keeps_the_id_and_reuses_finished_steps(stack, http, pool, temporal, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="retry me", address=OWNER)
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    assert (await http.post(f"/retry/{smol_id}")).status_code == 401
    assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
    assert (await http.post(f"/retry/{'c' * 64}", headers=stack.auth(OWNER))).status_code == 404
    response = await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))
    assert response.status_code == 200 and response.text == smol_id
    assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))).status_code == 409  # still running
    body = await wait_for(http, smol_id, stack.auth(OWNER))
    assert body["d1"]["Id"] == smol_id
    counts = await repo.provider_call_counts(pool, smol_id)
    assert [counts[s] for s in ("image", "description", "lyrics", "nsfw")] == [1, 1, 1, 1]
    assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))).status_code == 409  # finished


async def test_a_failed_smol_can_be_deleted_by_its_owner(stack, http, pool, temporal, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="delete my failure", address=OWNER)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert (stack.settings.object_root() / f"{smol_id}.png").exists()
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
    assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 204
    assert not (stack.settings.object_root() / f"{smol_id}.png").exists()
    assert await pool.fetchval("SELECT count(*) FROM smol_steps WHERE smol_id = $1", smol_id) == 0
    assert (await http.get(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 404


async def test_retry_in_the_first_moments_of_a_run_is_409_for_its_owner(stack, http, temporal, task_queue):
    """No worker serves this queue: the run has saved nothing, only Temporal knows whose smol it is."""
    smol_id, handle = await start_smol(temporal, task_queue, prompt="too early to retry", address=OWNER)
    try:
        assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))).status_code == 409
        assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
        assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 409
        assert (await http.delete(f"/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
        mine = (await http.get(f"/{smol_id}", headers=stack.auth(OWNER))).json()
        assert mine["kv_do"]["payload"]["prompt"] == "too early to retry"  # from the run's input
    finally:
        await handle.terminate("test over")


@activity.defn(name="save_payload")
async def payload_never_saved(data: SavePayloadInput) -> SavePayloadResult:
    raise ApplicationError("connection refused: the database is down", type="DatabaseDown", non_retryable=True)


@pytest.mark.timeout(120)
async def test_a_run_that_failed_before_saving_anything_is_shown_to_its_owner_and_retried(
    stack, http, pool, temporal, task_queue
):
    activities = [a for a in activities_with(stack, pool).all() if a.__name__ != "save_payload"]
    worker = smol_worker(temporal, task_queue=task_queue, workflows=[SmolWorkflow],
                    activities=[*activities, payload_never_saved])  # fmt: skip
    async with worker:
        smol_id, handle = await start_smol(temporal, task_queue, prompt="lost in an outage", address=OWNER,
                                           public=False)  # fmt: skip
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert await repo.load_steps(pool, smol_id) == {}
        mine = (await http.get(f"/{smol_id}", headers=stack.auth(OWNER))).json()
        theirs = (await http.get(f"/{smol_id}", headers=stack.auth(OTHER))).json()
    assert mine["wf"]["status"] == "errored" and mine["wf"]["error"]["name"] == "DatabaseDown"
    assert mine["kv_do"]["payload"]["prompt"] == "lost in an outage"
    assert theirs == {"kv_do": {"image": False}, "wf": {"status": "errored"}, "liked": False}
    await asyncio.sleep(0.5)  # past the shared view: no worker answers queries now, the run's input is read instead
    again = (await http.get(f"/{smol_id}", headers=stack.auth(OWNER))).json()
    assert again["wf"]["status"] == "errored" and "database is down" in again["wf"]["error"]["message"]
    assert again["kv_do"]["payload"]["prompt"] == "lost in an outage"

    assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OTHER))).status_code == 404
    retried = await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))
    assert retried.status_code == 200 and retried.text == smol_id
    body = await wait_for(http, smol_id, stack.auth(OWNER))
    assert body["d1"]["Public"] == 0 and body["kv_do"]["payload"]["prompt"] == "lost in an outage"
    assert (await http.get(f"/{smol_id}", headers=stack.auth(OTHER))).status_code == 404


async def test_a_deleted_failed_smol_stays_gone_while_its_history_is_deleted(stack, http, pool, temporal, task_queue):
    activities = [a for a in activities_with(stack, pool).all() if a.__name__ != "save_payload"]
    async with smol_worker(temporal, task_queue=task_queue, workflows=[SmolWorkflow],
                      activities=[*activities, payload_never_saved]):  # fmt: skip
        smol_id, handle = await start_smol(temporal, task_queue, prompt="failed and deleted", address=OWNER)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await http.delete(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 204
        assert (await http.get(f"/{smol_id}", headers=stack.auth(OWNER))).status_code == 404
        assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))).status_code == 404


async def test_runs_carry_a_summary_without_the_prompt(stack, http, pool, temporal):
    created = await http.post("/", json={"prompt": "a summarised secret", "public": False}, headers=stack.auth(OWNER))
    summary = await (await temporal.get_workflow_handle(created.text).describe()).static_summary()
    assert summary == start_summary(Payload(address=OWNER, prompt="", public=False))
    assert "secret" not in summary
    await wait_for(http, created.text, stack.auth(OWNER))


async def test_a_retried_run_is_summarised_by_its_title(stack, http, pool, temporal, task_queue):
    async with worker_for(temporal, task_queue, activities_with(stack, pool, songs=RefusingSongs())):
        smol_id, handle = await start_smol(temporal, task_queue, prompt="retry with a title", address=OWNER)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    title = (await repo.load_steps(pool, smol_id))["lyrics"]["value"]["title"]
    assert (await http.post(f"/retry/{smol_id}", headers=stack.auth(OWNER))).status_code == 200
    assert await (await temporal.get_workflow_handle(smol_id).describe()).static_summary() == title
    await wait_for(http, smol_id, stack.auth(OWNER))


async def test_song_urls_are_absolute(stack, http, two_smols):
    public, _ = two_smols
    songs = (await http.get(f"/{public['Id']}")).json()["kv_do"]["songs"]
    assert [s["audio"] for s in songs] == [f"{stack.api_url}/song/{s['music_id']}.mp3" for s in songs]
    assert (await http.get(songs[0]["audio"])).status_code == 200
    api, url = stack.start_api(public_url="https://api.smol.example/")
    try:
        async with httpx.AsyncClient(base_url=url) as other_api:
            songs = (await other_api.get(f"/{public['Id']}")).json()["kv_do"]["songs"]
    finally:
        _stop(api)
    assert [s["audio"] for s in songs] == [f"https://api.smol.example/song/{s['music_id']}.mp3" for s in songs]
