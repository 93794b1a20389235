"""What HTTP clients expect: a per-user create limit (429 + Retry-After), body size limits, CORS for listed origins."""

import uuid

import httpx
import pytest

from tests.support import _stop

ORIGIN = "https://smol.example"


@pytest.fixture(scope="module")
def strict_api(stack):
    api, url = stack.start_api(creates_per_minute=3, cors_origins=f'["{ORIGIN}"]', max_body_bytes=4096)
    yield url
    _stop(api)


async def test_create_limit_per_address_answers_429_with_retry_after(stack, strict_api):
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as http:
        for _ in range(3):
            ok = await http.post("/", json={"prompt": "limited"}, headers=stack.auth("GLIMITED"))
            assert ok.status_code == 200
        refused = await http.post("/", json={"prompt": "limited"}, headers=stack.auth("GLIMITED"))
        assert refused.status_code == 429 and "3 new runs a minute" in refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        other = await http.post("/", json={"prompt": "someone else"}, headers=stack.auth("GUNLIMITED"))
        assert other.status_code == 200
        bad = await http.post("/", json={"prompt": ""}, headers=stack.auth("GLIMITED"))
        assert bad.status_code == 422  # bad input is refused as such, before the limit


async def test_retries_count_against_the_same_limit(stack, strict_api, pool):
    from smol.ids import new_smol_id

    failed = new_smol_id()  # a smol that failed after saving its payload: its owner may retry it
    payload = {"address": "GRETRIER", "prompt": "again", "public": True, "instrumental": False, "playlist": None}
    await pool.execute("INSERT INTO smol_steps (smol_id, step, data) VALUES ($1, 'payload', $2)", failed, payload)
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as http:
        for _ in range(3):
            assert (await http.post("/", json={"prompt": "a run"}, headers=stack.auth("GRETRIER"))).status_code == 200
        refused = await http.post(f"/retry/{failed}", headers=stack.auth("GRETRIER"))
        assert refused.status_code == 429 and "retry-after" in refused.headers, refused.text


async def test_counted_creates_of_addresses_that_never_return_are_forgotten(stack, strict_api, pool):
    """Rows past every kind's window go; those within any kind's go on counting (a smol's window is a minute, a
    mint's or a registration's an hour)."""
    run = uuid.uuid4().hex[:8]  # other tests count creates in the same table; only this test's rows are compared
    gone = [f"GGONE{n}{run}" for n in range(3)]
    await pool.executemany("INSERT INTO create_requests (address, created_at) VALUES ($1, now() - interval '25 h')",
                           [(address,) for address in gone])  # fmt: skip
    counting = [f"GSTILLCOUNTED{run}", f"mint:GSTILLCOUNTED{run}", f"register:192.0.2.{run}"]
    await pool.executemany("INSERT INTO create_requests (address, created_at) VALUES ($1, now() - interval '2 min')",
                           [(address,) for address in counting])  # fmt: skip
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as http:
        assert (await http.post("/", json={"prompt": "a frog"}, headers=stack.auth("GPASSERBY"))).status_code == 200
    left = await pool.fetch("SELECT address FROM create_requests WHERE address = ANY($1::text[])",
                            [*gone, *counting, "GPASSERBY"])  # fmt: skip
    assert sorted(row["address"] for row in left) == sorted([*counting, "GPASSERBY"])


async def test_a_create_does_not_wait_on_old_rows_another_is_removing(stack, strict_api, pool):
    """Two creates removing the same old rows must not wait on each other (nor, in turn, deadlock)."""
    old = f"GOLDROWS{uuid.uuid4().hex[:8]}"
    await pool.executemany("INSERT INTO create_requests (address, created_at) VALUES ($1, now() - interval '25 h')",
                           [(old,)] * 5)  # fmt: skip
    async with pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM create_requests WHERE created_at < now() - interval '1 day' FOR UPDATE")
        async with httpx.AsyncClient(base_url=strict_api, timeout=10) as http:
            answer = await http.post("/", json={"prompt": "a frog"}, headers=stack.auth(f"GNOWAIT{old}"))
            assert answer.status_code == 200, answer.text


async def test_oversized_bodies_are_413(stack, strict_api):
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as http:
        big = await http.post("/", json={"prompt": "x" * 5000}, headers=stack.auth("GBIG"))
        assert big.status_code == 413

        async def chunks():
            for _ in range(10):
                yield b"x" * 1000

        streamed = await http.post(
            "/mixtapes", content=chunks(), headers={**stack.auth("GBIG"), "content-type": "application/json"}
        )
        assert streamed.status_code == 413


async def test_cors_allows_listed_origins_with_credentials_only(strict_api):
    async with httpx.AsyncClient(base_url=strict_api, timeout=30) as http:
        preflight = await http.options(
            "/", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "authorization,content-type"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        listed = await http.get("/", headers={"Origin": ORIGIN})
        assert listed.headers["access-control-allow-origin"] == ORIGIN
        stranger = await http.get("/", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers


async def test_healthz_checks_the_database(http):
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.text == "ok"
