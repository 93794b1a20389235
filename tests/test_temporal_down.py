"""With Temporal unreachable the API still starts, serves what is in Postgres and answers 503, never 500."""

import httpx
import pytest

from tests.support import _stop, free_port


@pytest.fixture(scope="module")
def api_without_temporal(stack):
    api, url = stack.start_api(temporal_address=f"127.0.0.1:{free_port()}")
    yield url
    _stop(api)


async def test_create_is_503_and_starts_nothing(stack, api_without_temporal, pool):
    async with httpx.AsyncClient(base_url=api_without_temporal, timeout=30) as http:
        response = await http.post("/", json={"prompt": "while temporal sleeps"}, headers=stack.auth("GDOWN"))
    assert response.status_code == 503 and "unavailable" in response.text
    assert response.headers["retry-after"]
    assert await pool.fetchval("SELECT count(*) FROM smol_steps WHERE data->>'prompt' = 'while temporal sleeps'") == 0
    # (nor does it count against the caller's runs a minute: retrying through an outage does not end in 429s)
    assert await pool.fetchval("SELECT count(*) FROM create_requests WHERE address = 'GDOWN'") == 0


async def test_finished_smols_and_media_are_still_served(api_without_temporal, finished_smol):
    smol_id = finished_smol["d1"]["Id"]
    async with httpx.AsyncClient(base_url=api_without_temporal, timeout=30) as http:
        assert (await http.get(f"/{smol_id}")).json()["d1"]["Id"] == smol_id
        assert (await http.get("/")).status_code == 200
        assert (await http.get(f"/image/{smol_id}.png")).status_code == 200
        assert (await http.get(f"/song/{finished_smol['d1']['Song_1']}.mp3")).status_code == 200
        unknown = await http.get("/" + "e" * 64)
    assert unknown.status_code == 503
