import time
from types import SimpleNamespace

import jwt
import pytest

from api import deps
from smol.errors import Unauthorized
from smol.settings import Settings
from smol.tokens import issue_token, verify_token
from tests.support import unsigned_jwt

SETTINGS = Settings(jwt_secret="a-secret-of-at-least-thirty-two-bytes!!")


def test_round_trip():
    claims = verify_token(SETTINGS, issue_token(SETTINGS, "GADDR", key="k1", username="ann"))
    assert (claims["sub"], claims["key"], claims["usr"]) == ("GADDR", "k1", "ann")
    assert claims["exp"] - time.time() > 29 * 86400


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        jwt.encode({"sub": "G", "exp": time.time() + 60}, "another-secret-of-thirty-two-bytes!!", algorithm="HS256"),
        jwt.encode({"sub": "G", "exp": time.time() - 60}, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256"),
        jwt.encode({"sub": "G"}, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256"),
        jwt.encode({"exp": time.time() + 60}, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256"),
        unsigned_jwt({"sub": "G", "exp": time.time() + 60}),
        "x" * 10000,
    ],
    ids=["empty", "garbage", "not-base64", "wrong-key", "expired", "no-exp", "no-sub", "alg-none", "huge"],
)
def test_bad_tokens_are_unauthorized(token):
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


def test_a_token_verified_before_still_expires():
    secret = SETTINGS.jwt_secret.get_secret_value()
    token = jwt.encode({"sub": "G", "exp": int(time.time()) + 2}, secret, algorithm="HS256")
    assert verify_token(SETTINGS, token)["sub"] == "G"  # (remembered)
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        verify_token(SETTINGS, token)


def test_remembered_claims_are_the_callers_own_copy_and_tied_to_the_secret():
    token = issue_token(SETTINGS, "GADDR")
    verify_token(SETTINGS, token)["sub"] = "GSOMEONE-ELSE"
    assert verify_token(SETTINGS, token)["sub"] == "GADDR"
    with pytest.raises(Unauthorized):  # (a token verified under one secret is not valid under another)
        verify_token(Settings(jwt_secret="another-secret-of-thirty-two-bytes!!"), token)


def test_an_expiry_given_as_text_is_read_as_pyjwt_reads_it():
    secret = SETTINGS.jwt_secret.get_secret_value()
    token = jwt.encode({"sub": "G", "exp": str(int(time.time()) + 60)}, secret, algorithm="HS256")
    for _ in range(2):  # (verified, then remembered)
        assert verify_token(SETTINGS, token)["sub"] == "G"


async def test_a_sessions_binding_is_looked_up_at_most_once_in_its_window(monkeypatch):
    """(api/deps.py: the test stack looks it up on every request, SMOL_SESSION_CHECK_SECONDS=0)"""
    looked_up = []

    class Pool:
        async def fetchval(self, query, *args):
            looked_up.append(args)
            return len(looked_up) - 1  # generation 0, then 1 (the binding's sessions were ended meanwhile)

    state = SimpleNamespace(settings=Settings(session_check_seconds=0.2), pool=Pool(), migrations=None)
    request = SimpleNamespace(app=SimpleNamespace(state=state))
    claims = {"key": "credential-" + str(time.time()), "sub": "GADDR", "gen": 0}
    await deps._refuse_ended_session(request, claims)
    await deps._refuse_ended_session(request, claims)  # (within the window: remembered)
    assert len(looked_up) == 1
    time.sleep(0.25)
    with pytest.raises(Unauthorized, match="ended"):
        await deps._refuse_ended_session(request, claims)
    assert len(looked_up) == 2
