"""The authorisation matrix: every mutating route called anonymously, by another user and by the owner."""

import json
import secrets

import pytest

from smol import social

OWNER, OTHER = "GMATRIXOWNER", "GMATRIXOTHER"


async def insert_smol(pool, address: str = OWNER) -> dict:
    smol_id = secrets.token_hex(32)
    song_1, song_2 = secrets.token_hex(8), secrets.token_hex(8)
    await pool.execute(
        "INSERT INTO smols (id, title, song_1, song_2, address) VALUES ($1, 'matrix', $2, $3, $4)",
        smol_id, song_1, song_2, address,
    )  # fmt: skip
    payload = {"address": address, "prompt": "matrix", "public": True, "instrumental": False, "playlist": None}
    await pool.execute(
        "INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, 'payload', $2::jsonb), ($1, 'nsfw', $3::jsonb)",
        smol_id, json.dumps(payload), json.dumps({"value": {"safe": True, "categories": []}}),
    )  # fmt: skip
    return {"id": smol_id, "song_1": song_1, "song_2": song_2}


async def insert_mixtape(pool, smol_id: str, address: str = OWNER) -> str:
    mixtape_id = secrets.token_hex(8)
    await social.create_mixtape(pool, mixtape_id, "t", "d", [smol_id], address)
    return mixtape_id


# route -> (method, path, body, status for the owner); anonymous callers get 401, other users 404.
OWNER_ONLY = {
    "toggle public": ("PUT", "/{id}", None, 204),
    "swap songs": ("PUT", "/{id}/{song_2}", None, 204),
    "delete smol": ("DELETE", "/{id}", None, 204),
    "retry": ("POST", "/retry/{id}", None, 409),  # finished: nothing to retry
    "update mixtape": ("PUT", "/mixtapes/{mixtape}", {"title": "new", "desc": "", "smols": ["{id}"]}, 204),
    "delete mixtape": ("DELETE", "/mixtapes/{mixtape}", None, 204),
}


def _fill(template, values: dict):
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


@pytest.mark.parametrize("route", list(OWNER_ONLY))
async def test_owner_only_routes(stack, http, pool, route):
    method, path, body, owner_status = OWNER_ONLY[route]
    smol = await insert_smol(pool)
    values = {**smol, "mixtape": await insert_mixtape(pool, smol["id"])}
    request = {"method": method, "url": _fill(path, values)}
    if body is not None:
        request["json"] = _fill(body, values)

    anonymous = await http.request(**request)
    assert anonymous.status_code == 401, (route, anonymous.text)
    forged = await http.request(**request, headers={"Authorization": "Bearer " + stack.token(OWNER)[:-4] + "AAAA"})
    assert forged.status_code == 401, route
    other = await http.request(**request, headers=stack.auth(OTHER))
    assert other.status_code == 404, (route, other.text)
    assert await pool.fetchval("SELECT count(*) FROM smols WHERE id = $1", smol["id"]) == 1  # nothing changed
    owner = await http.request(**request, headers=stack.auth(OWNER))
    assert owner.status_code == owner_status, (route, owner.text)


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/", {"prompt": "a matrix song"}, 200),
        ("PUT", "/likes/{id}", None, 204),
        ("POST", "/mixtapes", {"title": "m", "smols": ["{id}"]}, 201),
    ],
)
async def test_routes_for_any_signed_in_user(stack, http, pool, method, path, body, status):
    smol = await insert_smol(pool)
    request = {"method": method, "url": _fill(path, smol)}
    if body is not None:
        request["json"] = _fill(body, smol)
    assert (await http.request(**request)).status_code == 401
    assert (await http.request(**request, headers=stack.auth(OTHER))).status_code == status
