"""The owner pauses, resumes and cancels a smol being made over HTTP (POST /{id}/pause|resume|cancel), as the web app
does; nobody else can, and a smol that is not being made answers 409."""

import secrets

from temporalio.client import WorkflowExecutionStatus

from tests.support import ADDRESS, wait_for
from tests.support_api_clients import Steady, eventually, start_smol
from tests.workers import activities_with, worker_for


async def test_the_owner_pauses_resumes_and_cancels_and_nobody_else_can(stack, http, pool, temporal, task_queue):
    owner, stranger = "GOWNER" + secrets.token_hex(5).upper(), "GSTRANGER" + secrets.token_hex(4).upper()
    activities = activities_with(stack, pool)  # a run drawing its cover for a minute: still being made
    activities.providers.image = Steady(activities.providers.image.named("local"), {"generate": 60})
    queue = f"{task_queue}-controls"
    async with worker_for(temporal, queue, activities):
        smol_id = await start_smol(temporal, queue, owner, prompt="a frog held for a while", public=True)
        mine = stack.auth(owner)
        await wait_for(http, smol_id, mine, until=lambda b: b.get("wf", {}).get("status") == "running")

        for action in ("pause", "resume", "cancel"):
            assert (await http.post(f"/{smol_id}/{action}")).status_code == 401
            assert (await http.post(f"/{smol_id}/{action}", headers=stack.auth(stranger))).status_code == 404
        assert (await http.post(f"/{smol_id}/explode", headers=mine)).status_code in (404, 405)

        assert (await http.post(f"/{smol_id}/pause", headers=mine)).status_code == 204
        await wait_for(http, smol_id, mine, until=lambda b: b["wf"]["status"] == "paused")
        assert (await http.post(f"/{smol_id}/resume", headers=mine)).status_code == 204
        await wait_for(http, smol_id, mine, until=lambda b: b["wf"]["status"] == "running")
        assert (await http.post(f"/{smol_id}/cancel", headers=mine)).status_code == 204

        async def ended():
            status = (await temporal.get_workflow_handle(smol_id).describe()).status
            return status if status != WorkflowExecutionStatus.RUNNING else None

        assert await eventually(ended, timeout=60) == WorkflowExecutionStatus.CANCELED
        # a cancelled smol is removed with everything it made
        assert (await http.post(f"/{smol_id}/resume", headers=mine)).status_code == 404
        assert (await http.get(f"/{smol_id}", headers=mine)).status_code == 404


async def test_a_finished_smol_cannot_be_paused(stack, http, finished_smol):
    owner_headers = stack.auth(ADDRESS)
    smol_id = finished_smol["d1"]["Id"]
    assert (await http.post(f"/{smol_id}/pause", headers=owner_headers)).status_code == 409
    assert (await http.post(f"/{'0' * 64}/pause", headers=owner_headers)).status_code == 404


async def test_a_cookie_alone_changes_nothing_from_another_sites_page(stack, http, finished_smol):
    """SameSite=Lax still sends the cookie from a sibling subdomain or another localhost port: a form posted from
    such a page is refused; our own pages, API clients (Authorization) and non-browser callers are not."""
    smol_id = finished_smol["d1"]["Id"]
    token = stack.auth(ADDRESS)["Authorization"].removeprefix("Bearer ")
    cookie = {"Cookie": f"smol_token={token}"}
    forged = {**cookie, "Sec-Fetch-Site": "same-site", "Origin": "http://evil.localhost:5555"}
    assert (await http.post(f"/{smol_id}/pause", headers=forged)).status_code == 403
    assert (await http.put(f"/likes/{smol_id}", headers=forged)).status_code == 403
    elsewhere = {**cookie, "Origin": "http://evil.example"}  # an older browser: no Sec-Fetch-Site
    assert (await http.post(f"/{smol_id}/pause", headers=elsewhere)).status_code == 403
    ours = {**cookie, "Sec-Fetch-Site": "same-origin", "Origin": str(http.base_url).rstrip("/")}
    assert (await http.post(f"/{smol_id}/pause", headers=ours)).status_code == 409  # through: finished
    assert (await http.post(f"/{smol_id}/pause", headers=cookie)).status_code == 409  # not a browser
    assert (await http.get(f"/{smol_id}", headers=forged)).status_code == 200  # reading is not changing
