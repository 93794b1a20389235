"""Passkey login with a software authenticator: register, log in, and the ways a login must be refused."""

import base64
import hashlib
import json
import os
import secrets
import struct

import asyncpg
import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from soft_webauthn import SoftWebauthnDevice
from stellar_sdk import Keypair, scval
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url as b64

from smol.errors import StellarRpcError
from smol.settings import Settings
from smol.tokens import verify_token
from smol.validation import check_display_name
from smol.wallets import PASSKEY_KIT_DEPLOYER, _signer_key, wallet_address
from smol.wallets import on_chain as on_chain_wallet
from tests.support import _stop, wait_for

ORIGIN = "http://localhost:5173"
RP_ID = "localhost"
TESTNET = "Test SDF Network ; September 2015"
MAINNET = "Public Global Stellar Network ; September 2015"


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


def with_cose_key(credential: dict, key) -> dict:
    """The registration with its credential public key replaced (attestation "none" signs nothing over it)."""
    attestation = cbor2.loads(base64url_to_bytes(credential["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    key_starts = 55 + int.from_bytes(auth_data[53:55], "big")  # rp id hash, flags, counter, aaguid, id length, id
    attestation["authData"] = auth_data[:key_starts] + cbor2.dumps(key)
    return {**credential, "response": {**credential["response"], "attestationObject": b64(cbor2.dumps(attestation))}}


def wallet_of(credential: dict) -> str:
    """The passkey-kit wallet address of a credential (the only address `create` accepts for it)."""
    return wallet_address(base64url_to_bytes(credential["id"]), PASSKEY_KIT_DEPLOYER, TESTNET)


def challenge_of(credential: dict) -> str:
    return json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))["challenge"]


async def login(http, kind: str, credential: dict, address: str | None, username: str | None = None,
                origin: str = ORIGIN):  # fmt: skip
    body = {"type": kind, "keyId": credential["id"], "response": credential}
    if address is not None:
        body["contractId"] = address
    if username:
        body["username"] = username
    return await http.post("/login", json=body, headers={"Origin": origin} if origin else {})


async def register(http, device: SoftWebauthnDevice, username: str | None = None) -> str:
    credential = registration(device)
    response = await login(http, "create", credential, wallet_of(credential), username=username)
    assert response.status_code == 200, response.text
    return response.text


async def nothing_stored(pool, credential: dict, username: str | None = None) -> bool:
    return not (
        await pool.fetchval("SELECT count(*) FROM passkeys WHERE credential_id = $1", credential["id"])
        or await pool.fetchval("SELECT count(*) FROM used_challenges WHERE challenge = $1", challenge_of(credential))
        or (username and await pool.fetchval("SELECT count(*) FROM users WHERE username = $1", username))
    )


@pytest.fixture
async def registered(http):
    device = SoftWebauthnDevice()
    credential = registration(device)
    address = wallet_of(credential)
    response = await login(http, "create", credential, address, username="ann")
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
    credential = registration(device)
    address = wallet_of(credential)
    assert (await login(http, "create", credential, address)).status_code == 200
    device.sign_count = -1  # get() adds one: the assertion carries 0
    credential = assertion(device)
    assert (await login(http, "connect", credential, address)).status_code == 200
    replay = await login(http, "connect", credential, address)
    assert replay.status_code == 401 and "already used" in replay.text


async def test_a_counter_that_goes_back_is_refused(http, registered):
    device, address, _ = registered
    assert (await login(http, "connect", assertion(device), address)).status_code == 200
    device.sign_count = 0  # a cloned authenticator starts again from an old counter
    refused = await login(http, "connect", assertion(device), address)
    assert refused.status_code == 401 and refused.text.endswith("counter went back (a copied passkey?)"), refused.text


async def test_wrong_origin_is_refused_whatever_the_origin_header_says(http, registered):
    device, address, _ = registered
    evil = "https://evil.example"
    assert (await login(http, "connect", assertion(device, origin=evil), address, origin=evil)).status_code == 401
    refused = await login(http, "connect", assertion(device, origin=evil), address)
    assert refused.status_code == 401 and refused.text.endswith("it was made for another site"), refused.text
    assert ORIGIN not in refused.text  # (the library's own words list the origins configured)
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
    assert (await login(http, "create", registration(device), None)).status_code == 409


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
        {"type": "create", "keyId": "a", "response": {"id": "a", "response": {"clientDataJSON": b64(b"[" * 5_000)}}},
        {"type": "create", "keyId": credential["id"], "response": with_cose_key(credential, {1: 2, 3: -7, -1: 1})},
        {"type": "create", "keyId": credential["id"], "response": with_cose_key(credential, [1, 2])},
    ]  # fmt: skip
    for body in bad_bodies:
        response = await http.post("/login", json=body, headers={"Origin": ORIGIN})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)


async def test_a_malformed_credential_is_refused_without_the_librarys_words(http):
    credential = registration(SoftWebauthnDevice())
    listed = {**credential, "response": {**credential["response"], "attestationObject": b64(cbor2.dumps([1, 2]))}}
    response = await login(http, "create", listed, wallet_of(credential))
    assert response.status_code == 401 and response.text.endswith("the credential is malformed"), response.text


@pytest.mark.parametrize("name", ["\u202egnp.exe", "ann\u200b", "tab\there", "line\u2028break", "\x07bell",
                                  "\u3164", "ann\u00a0lee", "\u2800\u2800", "z" + "\u0301" * 4])
async def test_a_display_name_with_hidden_characters_is_refused_and_nothing_is_stored(http, pool, name):
    credential = registration(SoftWebauthnDevice())
    response = await login(http, "create", credential, wallet_of(credential), username=name)
    assert response.status_code == 422 and "display name may hold" in response.text, response.text
    assert await nothing_stored(pool, credential)


@pytest.mark.parametrize("name", ["Zoë Ann", "Zoe\u0301", "Nguyễn Văn", "김민수", "Ἀθηνᾶ", "ค่ะ"])
def test_display_names_in_any_script_pass(name):
    assert check_display_name(name) == name


async def test_a_display_name_is_trimmed(http, pool):
    credential = registration(SoftWebauthnDevice())
    address = wallet_of(credential)
    assert (await login(http, "create", credential, address, username="  Zoë Ann  ")).status_code == 200
    assert await pool.fetchval("SELECT username FROM users WHERE address = $1", address) == "Zoë Ann"


async def test_registrations_from_one_client_address_are_limited(stack, pool):
    """Each account brings its own allowance of smols: one client may register SMOL_REGISTRATIONS_PER_HOUR passkeys
    an hour (the address behind a proxy the API trusts: uvicorn reads X-Forwarded-For from loopback)."""
    api, url = stack.start_api(registrations_per_hour=2)
    client = f"203.0.113.{secrets.randbelow(250) + 1}, 198.51.100.{secrets.randbelow(250) + 1}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            async def register_from(forwarded: str, origin: str = ORIGIN) -> httpx.Response:
                credential = registration(SoftWebauthnDevice(), origin=origin)
                body = {"type": "create", "keyId": credential["id"], "response": credential}
                return await http.post("/login", json=body, headers={"Origin": ORIGIN, "X-Forwarded-For": forwarded})

            failed = [(await register_from(client, "https://evil.example")).status_code for _ in range(3)]
            assert failed == [401] * 3, failed  # (a registration that fails does not use up the client's allowance)
            assert [(await register_from(client)).status_code for _ in range(2)] == [200, 200]
            refused = await register_from(client)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 3000, refused.text
            assert (await register_from(client.split(",")[0] + "1, 192.0.2.1")).status_code == 200  # another client
            device = SoftWebauthnDevice()
            registration(device)  # (made on the device only: never registered)
            unknown = assertion(device)
            body = {"type": "connect", "keyId": unknown["id"], "response": unknown}
            signing_in = await http.post("/login", json=body, headers={"Origin": ORIGIN, "X-Forwarded-For": client})
            assert signing_in.status_code != 429  # (signing in is not registering)
            net = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}"  # one host's /64
            assert [(await register_from(f"{net}::{n}")).status_code for n in (1, 2, 3)] == [200, 200, 429]
            assert (await register_from(f"{net}:0:0:0:{secrets.randbelow(65536):x}")).status_code == 429
            assert (await register_from(f"{net}1::1")).status_code == 200  # (another /64)
            site = f"2001:db8:{secrets.randbelow(65536):x}"  # one site's /48: 8 x 2 registrations an hour in all
            made = [(await register_from(f"{site}:{n:x}::{k}")).status_code for n in range(8) for k in (1, 2)]
            assert made == [200] * 16, made
            assert (await register_from(f"{site}:8::1")).status_code == 429  # (a ninth /64 of the same site)
    finally:
        _stop(api)


async def test_logout_clears_the_cookie(http):
    response = await http.post("/logout")
    assert response.status_code == 204
    assert "smol_token=" in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]


async def test_logout_everywhere_ends_every_session_of_the_passkey(stack, http, registered):
    device, address, first = registered
    second = await login(http, "connect", assertion(device), address)
    sessions = [{"Authorization": f"Bearer {token}"} for token in (first.text, second.text)]
    http.cookies.clear()  # (the sign-ins set the cookie)
    assert (await http.post("/logout", params={"everywhere": "true"})).status_code == 401  # (whose?)
    operator = stack.auth(address)  # (a token without a passkey: an operator's tool's)
    assert (await http.post("/logout", params={"everywhere": "true"}, headers=operator)).status_code == 401
    assert all([(await http.get("/created", headers=session)).status_code == 200 for session in sessions])
    made = (await http.post("/keys", json={"name": "left behind"}, headers=sessions[0])).json()["key"]
    kept = (await http.post("/keys", json={"name": "operator's"}, headers=operator)).json()["key"]
    assert (await http.get("/created", headers={"X-API-Key": made})).status_code == 200
    ended = await http.post("/logout", params={"everywhere": "true"}, headers=sessions[1])
    assert ended.status_code == 204 and "Max-Age=0" in ended.headers["set-cookie"]
    assert [(await http.get("/created", headers=session)).status_code for session in sessions] == [401, 401]
    assert (await http.get("/created", headers={"X-API-Key": made})).status_code == 401  # (a session's key ends too)
    assert (await http.get("/created", headers={"X-API-Key": kept})).status_code == 200  # (made without a passkey)
    again = await login(http, "connect", assertion(device), address)
    assert again.status_code == 200
    session = {"Authorization": f"Bearer {again.text}"}
    assert (await http.get("/created", headers=session)).status_code == 200
    assert [key["name"] for key in (await http.get("/keys", headers=session)).json()] == ["operator's"]


# The wallet address a registration is bound to (issue 11 item 1)


def _strkey_contract(raw: bytes) -> str:
    """StrKey `C…` written out here (version byte 2 << 3, CRC16-XModem little-endian, base32), not stellar-sdk's."""
    data = bytes([2 << 3]) + raw
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return base64.b32encode(data + struct.pack("<H", crc)).decode().rstrip("=")


def _derive_by_hand(credential_id: bytes, deployer: str, passphrase: str) -> str:
    """The XDR HashIdPreimage packed by hand: ENVELOPE_TYPE_CONTRACT_ID (8), networkId, CONTRACT_ID_PREIMAGE_FROM_
    ADDRESS (0), SC_ADDRESS_TYPE_ACCOUNT (0), PUBLIC_KEY_TYPE_ED25519 (0), the key, salt = sha256(credential id)."""
    sha = lambda data: hashlib.sha256(data).digest()  # noqa: E731
    preimage = struct.pack(">i", 8) + sha(passphrase.encode()) + struct.pack(">iii", 0, 0, 0)
    preimage += Keypair.from_public_key(deployer).raw_public_key() + sha(credential_id)
    return _strkey_contract(sha(preimage))


# passkey-kit's own golden vectors (src/utils.test.ts, computed by its JavaScript deriveContractAddress)
PASSKEY_KIT_VECTORS = [
    ("00" * 16, TESTNET, "CD7HUBQP46MGSX3J2U5VLMU3UCAKO7KWFGUCZZQXJCOXCWRMSDDK6J2A"),
    ("0123456789abcdef0123456789abcdef", TESTNET, "CARFE5CAZUVN7NWEYKQHFD55SXPJ2IZNT3HQDI22PKNTLOHTAP6DENDJ"),
    ("deadbeefcafef00dfeedfacebaadf00d0123456789abcdef0123456789abcdef", TESTNET,
     "CAWJ3E3FTZPDQPHWYNRTDAWPW6SEUV4TFPIGW2VOSZHILKQG4N7JHK3P"),
    ("0123456789abcdef0123456789abcdef", MAINNET, "CBTNGSWMKSGVQ5YGEUHG2YJIZEGSTBZKSVUMWXSRODNQ732JRC5AYV6Z"),
]  # fmt: skip


@pytest.mark.parametrize("credential_hex, passphrase, expected", PASSKEY_KIT_VECTORS)
def test_the_wallet_address_is_passkey_kits(credential_hex, passphrase, expected):
    credential_id = bytes.fromhex(credential_hex)
    assert wallet_address(credential_id, PASSKEY_KIT_DEPLOYER, passphrase) == expected
    assert _derive_by_hand(credential_id, PASSKEY_KIT_DEPLOYER, passphrase) == expected


def test_the_default_deployer_is_passkey_kits_and_any_credential_derives_the_same_by_hand():
    kalepail = Keypair.from_raw_ed25519_seed(hashlib.sha256(b"kalepail").digest()).public_key
    assert Settings.model_fields["wallet_deployers"].default == [kalepail]
    assert PASSKEY_KIT_DEPLOYER == "GC2C7AWLS2FMFTQAHW3IBUB4ZXVP4E37XNLEF2IK7IVXBB6CMEPCSXFO"
    for _ in range(20):
        credential_id = os.urandom(int.from_bytes(os.urandom(1)) % 64 + 16)
        other = Keypair.random().public_key
        for deployer, passphrase in [(PASSKEY_KIT_DEPLOYER, TESTNET), (other, MAINNET)]:
            assert wallet_address(credential_id, deployer, passphrase) == _derive_by_hand(
                credential_id, deployer, passphrase
            )


async def test_registering_for_another_users_address_is_refused_and_stores_nothing(stack, http, pool):
    """The takeover: a fresh software authenticator names the victim's address as its contractId."""
    victim = SoftWebauthnDevice()
    victim_token = await register(http, victim, username="victim")
    victim_address = verify_token(stack.settings, victim_token)["sub"]
    made = await http.post("/", json={"prompt": "a secret lullaby", "public": False},
                           headers={"Authorization": f"Bearer {victim_token}"})  # fmt: skip
    assert made.status_code == 200, made.text
    as_victim = {"Authorization": f"Bearer {victim_token}"}
    await wait_for(http, made.text, as_victim, until=lambda body: "payload" in body.get("kv_do", {}))

    attacker = SoftWebauthnDevice()
    stolen = registration(attacker)
    refused = await login(http, "create", stolen, victim_address, username="mallory")
    assert refused.status_code == 403 and "not the wallet address" in refused.text
    assert "set-cookie" not in refused.headers
    assert await nothing_stored(pool, stolen, "mallory")
    assert await pool.fetchval("SELECT count(*) FROM passkeys WHERE address = $1", victim_address) == 1

    # the attacker's own registration gets the attacker's wallet, which cannot read or delete the victim's smol
    own = await login(http, "create", stolen, None, username="mallory")
    assert own.status_code == 200 and verify_token(stack.settings, own.text)["sub"] == wallet_of(stolen)
    as_attacker = {"Authorization": f"Bearer {own.text}"}
    assert "secret lullaby" not in (await http.get(f"/{made.text}", headers=as_attacker)).text
    assert (await http.delete(f"/{made.text}", headers=as_attacker)).status_code == 404
    assert "secret lullaby" in (await http.get(f"/{made.text}", headers=as_victim)).text


async def test_without_contract_id_the_server_derives_the_address(stack, http, pool):
    device = SoftWebauthnDevice()
    credential = registration(device)
    created = await login(http, "create", credential, None, username="derived")
    assert created.status_code == 200, created.text
    assert verify_token(stack.settings, created.text)["sub"] == wallet_of(credential)
    assert await pool.fetchval("SELECT address FROM passkeys WHERE credential_id = $1", credential["id"]) == (
        wallet_of(credential)
    )
    connected = await login(http, "connect", assertion(device), None)
    assert connected.status_code == 200 and verify_token(stack.settings, connected.text)["sub"] == wallet_of(credential)


async def test_an_address_already_bound_to_a_passkey_is_409_and_nothing_is_stored(http, pool):
    device = SoftWebauthnDevice()
    credential = registration(device)
    await pool.execute("INSERT INTO passkeys (credential_id, address, public_key, address_proven) VALUES ($1, $2, $3, "
                       "true)", "bound-" + os.urandom(8).hex(), wallet_of(credential), b"k")  # fmt: skip
    for address in (wallet_of(credential), None):
        bound = await login(http, "create", credential, address, username="late")
        assert bound.status_code == 409 and "already bound" in bound.text
        assert await nothing_stored(pool, credential, "late")


async def test_a_binding_planted_through_the_old_hole_does_not_lock_the_owner_out(http, pool):
    device = SoftWebauthnDevice()
    credential = registration(device)
    planted = "planted-" + os.urandom(8).hex()  # before 007, anyone could bind any address to their own credential
    await pool.execute("INSERT INTO passkeys (credential_id, address, public_key) VALUES ($1, $2, $3)",
                       planted, wallet_of(credential), b"k")  # fmt: skip
    owner = await login(http, "create", credential, None)
    assert owner.status_code == 200
    assert not await pool.fetchval("SELECT true FROM passkeys WHERE credential_id = $1", planted)


async def test_the_database_binds_an_address_to_one_proven_passkey(pool):
    address = "C" + os.urandom(16).hex().upper()
    insert = "INSERT INTO passkeys (credential_id, address, public_key, address_proven) VALUES ($1, $2, 'k', true)"
    await pool.execute(insert, "one-" + address, address)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(insert, "two-" + address, address)


async def test_an_old_binding_that_does_not_derive_no_longer_logs_in(http, pool, registered):
    device, address, _ = registered
    stolen = "C" + os.urandom(16).hex().upper()  # what the old create let anyone store
    await pool.execute("UPDATE passkeys SET address = $2, address_proven = false WHERE credential_id = $1",
                       b64(device.credential_id), stolen)  # fmt: skip
    for named in (stolen, None):
        response = await login(http, "connect", assertion(device), named)
        assert response.status_code == 401 and "not its wallet" in response.text


async def test_one_credential_gets_exactly_one_address(stack, http, pool):
    """One attacker can no longer multiply the per-address create limit by naming many addresses."""
    others = [wallet_of(registration(SoftWebauthnDevice())) for _ in range(3)] + ["C" + "A" * 55, "GABC", "x"]
    device = SoftWebauthnDevice()
    device.cred_init(RP_ID, b"one")
    device.cred_init = lambda rp_id, user_handle: None  # every registration below is of the same credential
    for address in others:
        assert (await login(http, "create", registration(device), address)).status_code == 403, address
    assert (await login(http, "create", registration(device), None)).status_code == 200
    for address in others:
        assert (await login(http, "create", registration(device), address)).status_code == 403, address
    assert (await login(http, "create", registration(device), None)).status_code == 409
    rows = await pool.fetch("SELECT address FROM passkeys WHERE credential_id = $1", b64(device.credential_id))
    assert [r["address"] for r in rows] == [wallet_address(device.credential_id, PASSKEY_KIT_DEPLOYER, TESTNET)]


async def test_several_deployers_each_credential_still_one_address(stack, pool):
    second = Keypair.random().public_key
    api, url = stack.start_api(wallet_deployers=json.dumps([PASSKEY_KIT_DEPLOYER, second]))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            device = SoftWebauthnDevice()
            credential = registration(device)
            under_second = wallet_address(device.credential_id, second, TESTNET)
            created = await login(client, "create", credential, under_second)
            assert created.status_code == 200 and verify_token(stack.settings, created.text)["sub"] == under_second
            device.cred_init = lambda rp_id, user_handle: None
            again = await login(client, "create", registration(device), wallet_of(credential))
            assert again.status_code == 409
            fresh = registration(SoftWebauthnDevice())  # its wallet on another network is not accepted here
            other_network = wallet_address(base64url_to_bytes(fresh["id"]), second, MAINNET)
            assert (await login(client, "create", fresh, other_network)).status_code == 403
            connected = await login(client, "connect", assertion(device), None)
            assert verify_token(stack.settings, connected.text)["sub"] == under_second
    finally:
        _stop(api)


# A credential id is no secret once its wallet is deployed (the wallet stores it on chain): the wallet's signer, read
# from the network (here tests/fake_stellar.py), decides who holds the address.


@pytest.fixture(scope="module")
def chain_api(stack, rpc):
    api, url = stack.start_api(stellar_rpc_url=rpc.url, wallet_check="required")
    yield url
    _stop(api)


@pytest.fixture
async def on_chain(chain_api):
    async with httpx.AsyncClient(base_url=chain_api, timeout=20) as client:
        yield client


def impostor(victim: SoftWebauthnDevice) -> SoftWebauthnDevice:
    """An authenticator of the attacker's that names the victim's credential id as its own (any client can)."""
    device = SoftWebauthnDevice()
    make_key = device.cred_init

    def cred_init(rp_id, user_handle):
        make_key(rp_id, user_handle)
        device.credential_id = victim.credential_id

    device.cred_init = cred_init
    return device


def signer_key(device: SoftWebauthnDevice) -> bytes:
    return device.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


async def test_a_key_with_numbers_for_coordinates_is_refused_not_a_crash(on_chain, rpc, pool):
    device = SoftWebauthnDevice()
    credential = registration(device)
    rpc.wallets[wallet_of(credential)] = {device.credential_id: (signer_key(device), "persistent")}
    odd = with_cose_key(credential, {1: 2, 3: -7, -1: 1, -2: 12345, -3: 67890})
    refused = await login(on_chain, "create", odd, wallet_of(credential))
    assert refused.status_code in (401, 403), refused.text
    assert await nothing_stored(pool, odd)


async def test_a_deployed_wallet_refuses_a_passkey_that_is_not_its_signer(on_chain, rpc, pool):
    victim = SoftWebauthnDevice()
    own = registration(victim)
    address = wallet_of(own)
    rpc.wallets[address] = {victim.credential_id: (signer_key(victim), "persistent")}  # (deployed)

    forged = registration(impostor(victim))
    assert forged["id"] == own["id"]
    refused = await login(on_chain, "create", forged, address, username="mallory-on-chain")
    assert refused.status_code == 403 and "not a signer" in refused.text, refused.text
    assert await nothing_stored(pool, forged, "mallory-on-chain")

    made = await login(on_chain, "create", own, address, username="victim")
    assert made.status_code == 200, made.text
    assert await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", own["id"])
    assert (await login(on_chain, "connect", assertion(victim), address)).status_code == 200

    other = SoftWebauthnDevice()
    elsewhere = registration(other)
    rpc.wallets[wallet_of(elsewhere)] = {}  # deployed, its signer kept where we do not look: nobody is locked out
    assert (await login(on_chain, "create", elsewhere, None)).status_code == 200
    assert not await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", elsewhere["id"])


async def test_a_binding_made_before_the_wallet_was_deployed_yields_to_the_wallets_signer(on_chain, rpc, pool,
                                                                                           stack):  # fmt: skip
    victim = SoftWebauthnDevice()
    own = registration(victim)
    address = wallet_of(own)
    attacker = impostor(victim)
    first = await login(on_chain, "create", registration(attacker), address)  # before the wallet is deployed
    assert first.status_code == 200, first.text
    as_attacker = {"Authorization": f"Bearer {first.text}"}
    assert (await on_chain.get("/created", headers=as_attacker)).status_code == 200
    left_behind = (await on_chain.post("/keys", json={"name": "mine now"}, headers=as_attacker)).json()["key"]
    assert not await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", own["id"])

    rpc.wallets[address] = {victim.credential_id: (signer_key(victim), "temporary")}  # now deployed: the victim's
    assert (await login(on_chain, "connect", assertion(attacker), address)).status_code == 401
    # the owner logs in with the passkey the wallet names (a real authenticator cannot register its credential again)
    owner = await login(on_chain, "connect", assertion(victim), address)
    assert owner.status_code == 200, owner.text
    assert verify_token(stack.settings, owner.text)["gen"] == 1
    assert (await on_chain.get("/created", headers=as_attacker)).status_code == 401  # the attacker's session ended
    assert (await on_chain.get("/created", headers={"X-API-Key": left_behind})).status_code == 401  # and their key
    assert (await on_chain.get("/created", headers={"Authorization": f"Bearer {owner.text}"})).status_code == 200
    assert (await login(on_chain, "connect", assertion(victim), address)).status_code == 200
    assert (await login(on_chain, "connect", assertion(attacker), address)).status_code == 401
    assert await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", own["id"])


async def test_an_unconfirmed_binding_yields_to_the_owners_registration_too(on_chain, rpc):
    victim = SoftWebauthnDevice()
    own = registration(victim)
    address = wallet_of(own)
    attacker = impostor(victim)
    first = await login(on_chain, "create", registration(attacker), address)  # before the wallet is deployed
    assert first.status_code == 200, first.text
    rpc.wallets[address] = {victim.credential_id: (signer_key(victim), "persistent")}
    made = await login(on_chain, "create", own, address)
    assert made.status_code == 200, made.text
    assert (await on_chain.get("/created", headers={"Authorization": f"Bearer {first.text}"})).status_code == 401


async def test_no_passkey_is_registered_while_the_network_cannot_say_who_holds_its_wallet(stack, pool):
    api, url = stack.start_api(stellar_rpc_url="http://127.0.0.1:9", wallet_check="required")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            credential = registration(SoftWebauthnDevice())
            refused = await login(http, "create", credential, None, username="while-offline")
            assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
            assert await nothing_stored(pool, credential, "while-offline")
    finally:
        _stop(api)


async def test_a_binding_the_network_could_not_check_is_confirmed_at_a_later_sign_in(on_chain, http, rpc, pool):
    device = SoftWebauthnDevice()
    credential = registration(device)
    address = wallet_of(credential)
    assert (await login(http, "create", credential, address)).status_code == 200  # (this API: no network)
    assert not await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", credential["id"])
    rpc.wallets[address] = {device.credential_id: (signer_key(device), "persistent")}
    assert (await login(on_chain, "connect", assertion(device), address)).status_code == 200
    assert await pool.fetchval("SELECT on_chain FROM passkeys WHERE credential_id = $1", credential["id"])


def test_a_wallets_stored_signer_is_read_in_either_contract_layout():
    key = b"\x04" + os.urandom(64)
    assert _signer_key(scval.to_vec([scval.to_symbol("Secp256r1"), scval.to_bytes(key), scval.to_void()])) == key
    assert _signer_key(scval.to_bytes(key)) == key  # (the earlier webauthn-wallet: the key itself)
    assert _signer_key(scval.to_vec([scval.to_symbol("Ed25519"), scval.to_bytes(key)])) is None
    assert _signer_key(scval.to_vec([scval.to_symbol("Secp256r1"), scval.to_bytes(key[:33])])) is None
    assert _signer_key(scval.to_uint32(7)) is None


async def test_an_answer_that_is_no_ledger_entry_leaves_the_wallet_unknown():
    """(so a sign-in treats it as a network that cannot say, not as a 500)"""

    class Garbled:
        async def call(self, method, params):
            return {"entries": [{"xdr": "not base64!"}, {"key": "k"}]}

    with pytest.raises(StellarRpcError):
        await on_chain_wallet(Garbled(), wallet_of(registration(SoftWebauthnDevice())), b"credential")
