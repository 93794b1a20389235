"""HS256 session tokens: `sub` is the user's address, `key` the passkey id, `usr` the username."""

import time

import jwt

from smol.errors import Unauthorized
from smol.settings import Settings
from smol.validation import storable

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096


def issue_token(settings: Settings, address: str, key: str = "", username: str = "", premium: bool = False) -> str:
    """`premium` adds the claim that lets the holder get signed URLs of premium catalog tracks."""
    now = int(time.time())
    claims = {"sub": address, "key": key, "usr": username, "iat": now, "exp": now + settings.jwt_days * 86400}
    if premium:
        claims["premium"] = True
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def verify_token(settings: Settings, token: str) -> dict:
    """The token's claims, or Unauthorized for anything missing, malformed, wrongly signed or expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid token")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthorized("invalid token")
    for name in ("sub", "key", "usr"):  # a lone surrogate or NUL could be neither stored nor sent back
        value = claims.get(name)
        if isinstance(value, str) and not storable(value):
            raise Unauthorized("invalid token")
    return claims
