"""HS256 session tokens: `sub` is the user's address, `key` the passkey id, `usr` the username."""

import time

import jwt

from smol.errors import Unauthorized
from smol.settings import Settings
from smol.validation import storable

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
KEPT = 4096  # tokens whose claims are remembered once verified (past that, the memory starts empty again)
_verified: dict[tuple[str, str], tuple[int, dict]] = {}  # (secret, token) -> its expiry, its claims


def issue_token(settings: Settings, address: str, key: str = "", username: str = "", premium: bool = False,
                generation: int = 0) -> str:  # fmt: skip
    """`premium` adds the claim that lets the holder get signed URLs of premium catalog tracks; `generation`, that of
    the passkey's binding (claim `gen`, left out when 0: a replaced binding's tokens stop working, api/deps.py)."""
    now = int(time.time())
    claims = {"sub": address, "key": key, "usr": username, "iat": now, "exp": now + settings.jwt_days * 86400}
    if generation:
        claims["gen"] = generation
    if premium:
        claims["premium"] = True
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def verify_token(settings: Settings, token: str) -> dict:
    """The token's claims, or Unauthorized for anything missing, malformed, wrongly signed or expired. A token seen
    valid before is not verified again, only checked for expiry (PyJWT took ~100 µs of CPU per request, a tenth
    of a signed-in search's time in the API); a refused one is verified every time."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid token")
    secret = settings.jwt_secret.get_secret_value()
    kept = _verified.get((secret, token))
    if kept is None:
        claims = _verify(secret, token)
        if len(_verified) >= KEPT:
            _verified.clear()
        _verified[(secret, token)] = (int(claims["exp"]), claims)  # (PyJWT accepts what int() does)
        return dict(claims)
    if kept[0] <= time.time():  # (as PyJWT decides it)
        raise Unauthorized("token expired")
    return dict(kept[1])


def _verify(secret: str, token: str) -> dict:
    try:
        claims = jwt.decode(
            token,
            secret,
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
