import time

import jwt
import pytest

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
