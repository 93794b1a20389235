"""Passkey login with a software authenticator: register, log in, and the ways a login must be refused."""

import os

import pytest
from soft_webauthn import SoftWebauthnDevice
from webauthn.helpers import bytes_to_base64url as b64

from smol.tokens import verify_token

ORIGIN = "http://localhost:5173"
RP_ID = "localhost"


def registration(device: SoftWebauthnDevice, origin: str = ORIGIN, rp_id: str = RP_ID) -> dict:
    options = {"publicKey": {
        "challenge": os.urandom(32), "rp": {"id": rp_id, "name": "Smol"}, "user": {"id": os.urandom(8), "name": "u"},
        "pubKeyCredParams": [{"alg": -7, "type": "public-key"}],
    }}  # fmt: skip
    made = device.create(options, origin)
    response = {k: b64(v) for k, v in made["response"].items()}
    return {"id": b64(made["rawId"]), "rawId": b64(made["rawId"]), "type": "public-key", "response": response}


def assertion(device: SoftWebauthnDevice, origin: str = ORIGIN, rp_id: str = RP_ID) -> dict:
    made = device.get({"publicKey": {"challenge": os.urandom(32), "rpId": rp_id}}, origin)
    response = {k: b64(v) for k, v in made["response"].items() if v is not None}
    return {"id": b64(made["rawId"]), "rawId": b64(made["rawId"]), "type": "public-key", "response": response}


async def login(http, kind: str, credential: dict, address: str, username: str | None = None, origin: str = ORIGIN):
    body = {"type": kind, "keyId": credential["id"], "contractId": address, "response": credential}
    if username:
        body["username"] = username
    return await http.post("/login", json=body, headers={"Origin": origin} if origin else {})


@pytest.fixture
async def registered(http):
    device = SoftWebauthnDevice()
    address = "C" + os.urandom(8).hex().upper()
    response = await login(http, "create", registration(device), address, username="ann")
    assert response.status_code == 200, response.text
    return device, address, response


async def test_register_sets_the_token_as_body_and_cookie(stack, http, pool, registered):
    device, address, response = registered
    claims = verify_token(stack.settings, response.text)
    assert (claims["sub"], claims["usr"], claims["key"]) == (address, "ann", b64(device.credential_id))
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"smol_token={response.text};") and "Max-Age=2592000" in cookie
    assert "Path=/" in cookie and "samesite=lax" in cookie.lower()
    assert await pool.fetchval("SELECT count(*) FROM users WHERE username = 'ann' AND address = $1", address) == 1


async def test_connect_logs_in_and_the_token_works(stack, http, registered):
    device, address, _ = registered
    response = await login(http, "connect", assertion(device), address)
    assert response.status_code == 200, response.text
    assert verify_token(stack.settings, response.text)["sub"] == address
    assert (await http.get("/created", headers={"Authorization": f"Bearer {response.text}"})).status_code == 200


async def test_a_replayed_assertion_is_refused(http, registered):
    device, address, _ = registered
    credential = assertion(device)
    assert (await login(http, "connect", credential, address)).status_code == 200
    assert (await login(http, "connect", credential, address)).status_code == 401


async def test_a_replay_is_refused_even_from_an_authenticator_without_a_counter(http):
    device = SoftWebauthnDevice()  # many passkeys always report sign count 0
    address = "C" + os.urandom(8).hex().upper()
    assert (await login(http, "create", registration(device), address)).status_code == 200
    device.sign_count = -1  # get() adds one: the assertion carries 0
    credential = assertion(device)
    assert (await login(http, "connect", credential, address)).status_code == 200
    replay = await login(http, "connect", credential, address)
    assert replay.status_code == 401 and "already used" in replay.text


async def test_a_counter_that_goes_back_is_refused(http, registered):
    device, address, _ = registered
    assert (await login(http, "connect", assertion(device), address)).status_code == 200
    device.sign_count = 0  # a cloned authenticator starts again from an old counter
    assert (await login(http, "connect", assertion(device), address)).status_code == 401


async def test_wrong_origin_is_refused_whatever_the_origin_header_says(http, registered):
    device, address, _ = registered
    evil = "https://evil.example"
    assert (await login(http, "connect", assertion(device, origin=evil), address, origin=evil)).status_code == 401
    assert (await login(http, "connect", assertion(device, origin=evil), address)).status_code == 401
    fresh = SoftWebauthnDevice()
    assert (await login(http, "create", registration(fresh, origin=evil), "CEVIL", origin=evil)).status_code == 401
    other_rp = SoftWebauthnDevice()
    assert (await login(http, "create", registration(other_rp, rp_id="evil.example"), "CEVIL")).status_code == 401


async def test_unknown_credential_and_other_address_are_refused(http, registered):
    device, address, _ = registered
    stranger = SoftWebauthnDevice()
    stranger.cred_init(RP_ID, b"x")
    assert (await login(http, "connect", assertion(stranger), address)).status_code == 401
    other = await login(http, "connect", assertion(device), "CSOMEONEELSE")
    assert other.status_code == 401 and "not registered for that address" in other.text


async def test_registering_the_same_passkey_twice_is_409(http, registered):
    device, address, _ = registered
    device.cred_init = lambda rp_id, user_handle: None  # keep the same credential for a second registration
    again = registration(device)
    assert again["id"] == b64(device.credential_id)
    duplicate = await login(http, "create", again, address)
    assert duplicate.status_code == 409 and "already registered" in duplicate.text


async def test_missing_origin_and_malformed_bodies_are_4xx(http):
    device = SoftWebauthnDevice()
    credential = registration(device)
    assert (await login(http, "create", credential, "CNOORIGIN", origin=None)).status_code == 400
    bad_bodies = [
        {},
        {"type": "create"},
        {"type": "steal", "keyId": "a", "contractId": "b", "response": {}},
        {"type": "create", "keyId": "a", "contractId": "b", "response": {}},
        {"type": "connect", "keyId": "a", "contractId": "b", "response": {"id": "a"}},
        {"type": "connect", "keyId": "a", "contractId": "b",
         "response": {"id": "a", "response": {"clientDataJSON": "!!"}}},
        {"type": "create", "keyId": credential["id"], "contractId": "b",
         "response": {**credential, "response": {**credential["response"], "attestationObject": "AAAA"}}},
    ]  # fmt: skip
    for body in bad_bodies:
        response = await http.post("/login", json=body, headers={"Origin": ORIGIN})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)


async def test_logout_clears_the_cookie(http):
    response = await http.post("/logout")
    assert response.status_code == 204
    assert "smol_token=" in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]
