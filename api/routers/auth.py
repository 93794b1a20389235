"""Passkey login (WebAuthn registration and assertion) and logout, with the session token as body and cookie."""

import json
import logging
from typing import Literal

import cbor2
import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, field_validator
from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, decode_credential_public_key
from webauthn.helpers.decode_credential_public_key import DecodedEC2PublicKey
from webauthn.helpers.exceptions import WebAuthnException

from api.clients import client_of
from api.deps import COOKIE, PoolDep, SettingsDep, end_sessions_everywhere
from smol import passkeys, repo, wallets
from smol.errors import Forbidden, InvalidInput, ServiceUnavailable, StellarRpcError, TooManyRequests, Unauthorized
from smol.settings import Settings
from smol.stellar_rpc import StellarRpc
from smol.tokens import issue_token
from smol.validation import check_display_name

log = logging.getLogger("smol.api")
router = APIRouter(tags=["auth"])
TEXT = {"content": {"text/plain": {}}}


class LoginBody(BaseModel):
    type: Literal["create", "connect"]
    keyId: str = Field(min_length=1, max_length=1024, description="the passkey's credential id (base64url)")
    contractId: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="the user's address: the passkey-kit wallet address derived from the credential; "
        "derived by the server when omitted (create), the stored one when omitted (connect)",
    )  # fmt: skip
    response: dict = Field(description="the PublicKeyCredential as JSON, binary fields in base64url")
    username: str | None = Field(default=None, max_length=64)

    @field_validator("username")
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        return None if value is None else check_display_name(value)


WIDE_NETWORK_SHARE = 8  # an IPv6 /48 may register this many times a client's (/64's) allowance


def _client_challenge(credential: dict, ceremony: str) -> str:
    """The challenge the client signed, read from its clientDataJSON (checked for reuse, not for origin)."""
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        challenge, kind = client_data["challenge"], client_data["type"]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, RecursionError):  # ("[[[[..." nested past the stack)
        raise InvalidInput("response.clientDataJSON is not WebAuthn client data") from None
    if kind != ceremony or not isinstance(challenge, str) or not 16 <= len(challenge) <= 512:
        raise InvalidInput(f"response is not a {ceremony} ceremony with a challenge")
    return challenge


def _verify(settings: Settings, check):
    """Run a WebAuthn check against each configured relying-party id; the first that passes wins."""
    error: Exception | None = None
    for rp_id in settings.webauthn_rp_ids:
        try:
            return check(rp_id)
        except Exception as exc:  # (besides its own errors, the library trips over malformed fields in many ways)
            error = exc
    log.info("passkey verification failed: %r", error)  # (the library's words name the configured origins)
    reason = "the credential is malformed"  # (the library tripped over a malformed field)
    if isinstance(error, WebAuthnException):
        said = str(error).lower()
        reason = next(reason for word, reason in _REASONS if word in said)
    raise Unauthorized(f"passkey verification failed: {reason}")


# What a client is told, by a word in the WebAuthn library's message (the first that appears in it).
_REASONS = (
    ("origin", "it was made for another site"),
    ("rp id", "it was made for another site"),
    ("challenge", "it does not answer the challenge it names"),
    ("sign count", "its signature counter went back (a copied passkey?)"),
    ("signature", "its signature does not verify"),
    ("user", "the user was not present or not verified"),
    ("", "it could not be verified"),
)


def _wallet_addresses(settings: Settings, credential_id: bytes) -> list[str]:
    return wallets.wallet_addresses(credential_id, settings.wallet_deployers, settings.stellar_network_passphrase)


def _sec1(cose_key: bytes) -> bytes | None:
    """A P-256 credential public key as a wallet stores it (SEC 1, uncompressed); None for other keys."""
    try:
        key = decode_credential_public_key(cose_key)
    except Exception:
        return None
    if not isinstance(key, DecodedEC2PublicKey) or not isinstance(key.x, bytes) or not isinstance(key.y, bytes):
        return None
    if len(key.x) != 32 or len(key.y) != 32:
        return None
    return b"\x04" + key.x + key.y


def _cose(sec1: bytes) -> bytes:
    """A wallet's P-256 signer key as WebAuthn verifies with it (COSE, ES256)."""
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: sec1[1:33], -3: sec1[33:65]})


async def _wallet_signer(settings: Settings, address: str, credential_id: bytes) -> bytes | None:
    """The public key the wallet at `address` holds for the credential; None when it holds none where passkey-kit
    keeps them (not deployed yet, or kept elsewhere), or when SMOL_WALLET_CHECK is off. StellarRpcError when the
    network cannot say."""
    if settings.wallet_check == "off":
        return None
    async with httpx.AsyncClient(timeout=settings.wallet_check_timeout) as http:
        return await wallets.on_chain(StellarRpc(http, settings.stellar_rpc_url), address, credential_id)


async def _register(body: LoginBody, pool, settings: Settings, request: Request) -> tuple[str, str, int]:
    challenge = _client_challenge(body.response, "webauthn.create")
    verified = _verify(settings, lambda rp_id: verify_registration_response(
        credential=body.response, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp_id,
        expected_origin=settings.webauthn_origins,
    ))  # fmt: skip
    if bytes_to_base64url(verified.credential_id) != body.keyId:
        raise InvalidInput("keyId is not the id of the registered credential")
    derived = _wallet_addresses(settings, verified.credential_id)
    address = body.contractId or derived[0]
    if address not in derived:
        raise Forbidden("contractId is not the wallet address of this passkey")
    # A credential id is public once its wallet is deployed: the wallet's own signer decides who holds it. (With no
    # answer from the network, nobody may claim it: anyone could while the network was slow.)
    try:
        signer = await _wallet_signer(settings, address, verified.credential_id)
    except StellarRpcError as exc:
        log.warning("could not look up wallet %s on the network: %s", address, exc)
        raise ServiceUnavailable("the Stellar network could not be asked who holds this wallet; try again") from None
    if signer is not None and signer != _sec1(verified.credential_public_key):
        raise Forbidden("this passkey is not a signer of the wallet deployed at its address")
    await _take_registration_slot(pool, settings, request)  # (only a registration that would succeed counts)
    username = body.username or ""
    generation = await passkeys.register(
        pool, challenge=challenge, credential_id=body.keyId, address=address, username=username,
        public_key=verified.credential_public_key, sign_count=verified.sign_count, on_chain=signer is not None,
    )  # fmt: skip
    return address, username, generation


async def _connect(body: LoginBody, pool, settings: Settings) -> tuple[str, str, int]:
    challenge = _client_challenge(body.response, "webauthn.get")
    stored = await passkeys.find(pool, body.keyId)
    if stored is None:
        raise Unauthorized("unknown passkey")
    if body.contractId and stored["address"] != body.contractId:
        raise Unauthorized("this passkey is not registered for that address")
    if stored["address"] not in _wallet_addresses(settings, base64url_to_bytes(body.keyId)):
        # bound before registration proved the address (migration 007): it may not be this passkey's wallet
        raise Unauthorized("this passkey is bound to an address that is not its wallet (an unproven, older binding)")
    key, signer = stored["public_key"], None
    if not stored["on_chain"]:  # registered before its wallet was deployed (or with SMOL_WALLET_CHECK off)
        try:
            signer = await _wallet_signer(settings, stored["address"], base64url_to_bytes(body.keyId))
        except StellarRpcError as exc:  # (logging in stays possible; it is checked again the next time)
            log.warning("could not look up wallet %s on the network: %s", stored["address"], exc)
        if signer is not None and signer != _sec1(key):
            key = _cose(signer)  # the wallet names another key: only its holder may log in, and then owns the binding
    verified = _verify(settings, lambda rp_id: verify_authentication_response(
        credential=body.response, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp_id,
        expected_origin=settings.webauthn_origins, credential_public_key=key,
        credential_current_sign_count=stored["sign_count"] if key == stored["public_key"] else 0,
    ))  # fmt: skip
    if not await passkeys.spend_challenge(pool, challenge):
        raise Unauthorized("this assertion was already used")
    if key != stored["public_key"]:
        generation = await passkeys.take_over(pool, body.keyId, stored, key, verified.new_sign_count)
        return stored["address"], "", generation
    if signer is not None:
        await passkeys.confirm_on_chain(pool, body.keyId, key)
    if not await passkeys.advance_counter(pool, body.keyId, stored["sign_count"], verified.new_sign_count):
        raise Unauthorized("this assertion was already used")
    return stored["address"], stored["username"], stored["generation"]


async def _take_registration_slot(pool, settings: Settings, request: Request) -> None:
    """Count one registration for the client's address, or 429 past SMOL_REGISTRATIONS_PER_HOUR: a new account
    is a new allowance of smols (and of paid provider calls), so accounts must not come for free. An IPv6 client
    counts as its /64, and its /48 (a whole site's or subscriber's) may register WIDE_NETWORK_SHARE times as many."""
    client, network = client_of(request), client_of(request, 48)
    limits = [(client, settings.registrations_per_hour)]
    if network != client:
        limits.append((network, settings.registrations_per_hour * WIDE_NETWORK_SHARE))
    for who, limit in limits:
        wait = await repo.take_create_slot(pool, f"register:{who}", limit, 3600)
        if wait is not None:
            raise TooManyRequests(f"at most {limit} passkeys registered an hour from {who}; try again later", wait)


@router.post(
    "/login",
    response_class=PlainTextResponse,
    summary="Register a passkey (create) or log in with one (connect); answers the session token",
    responses={
        200: {"description": "The JWT, also set as the smol_token cookie", **TEXT},
        400: {"description": "No Origin/Referer header, or a malformed credential", **TEXT},
        401: {"description": "Verification failed, unknown passkey, or a replay", **TEXT},
        403: {"description": "contractId is not the wallet address derived from the passkey", **TEXT},
        409: {"description": "The passkey, or the address, is already registered", **TEXT},
        429: {"description": "Too many passkeys registered from this client address; see Retry-After", **TEXT},
    },
)
async def login(body: LoginBody, request: Request, response: Response, pool: PoolDep, settings: SettingsDep) -> str:
    if not (request.headers.get("origin") or request.headers.get("referer")):
        raise InvalidInput("an Origin (or Referer) header is required")
    if body.response.get("id") != body.keyId:
        raise InvalidInput("keyId does not match the credential's id")
    if body.type == "create":
        address, username, generation = await _register(body, pool, settings, request)
    else:
        address, username, generation = await _connect(body, pool, settings)
    token = issue_token(settings, address, key=body.keyId, username=username, generation=generation)
    response.set_cookie(
        COOKIE, token, max_age=settings.jwt_days * 86400, path="/", samesite="lax", httponly=True,
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return token


@router.post("/logout", status_code=204, summary="Clear the session cookie; `everywhere`: end every session of the "
             "passkey", responses={401: {"description": "everywhere without a passkey session", **TEXT}})  # fmt: skip
async def logout(request: Request, everywhere: bool = False) -> Response:
    if everywhere:
        await end_sessions_everywhere(request)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", samesite="lax", httponly=True)
    return response
