"""What a hostile client can send: bad tokens, deep or broken JSON, traversal and CR/LF in every path parameter.
Each gets a 4xx; none a 5xx, and nothing reaches a response header."""

import time

import jwt
import pytest

from tests.conftest import JWT_SECRET
from tests.test_tokens import _unsigned

SMOL = "ab" * 32
BAD_TOKENS = {
    "alg-none": _unsigned({"sub": "GEVIL", "exp": time.time() + 600}),
    "wrong-key": jwt.encode({"sub": "GEVIL", "exp": time.time() + 600}, "x" * 40, algorithm="HS256"),
    "expired": jwt.encode({"sub": "GEVIL", "exp": time.time() - 5}, JWT_SECRET, algorithm="HS256"),
    "malformed": "eyJhbGciOi.not-a-token",
    "huge": "e" * 60_000,
    "hs512-with-our-key": jwt.encode({"sub": "GEVIL", "exp": time.time() + 600}, JWT_SECRET, algorithm="HS512"),
}
PROTECTED = [("GET", "/created"), ("GET", "/liked"), ("GET", "/likes"), ("PUT", f"/likes/{SMOL}"),
             ("POST", "/"), ("DELETE", f"/{SMOL}"), ("POST", f"/mint/{SMOL}"), ("POST", "/mint")]  # fmt: skip


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_tokens_are_401_as_header_and_as_cookie(http, kind):
    token = BAD_TOKENS[kind]
    for method, path in PROTECTED:
        as_header = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, json={})
        assert as_header.status_code == 401, (method, path, as_header.status_code)
        as_cookie = await http.request(method, path, headers={"Cookie": f"smol_token={token}"}, json={})
        assert as_cookie.status_code == 401, (method, path, as_cookie.status_code)


async def test_deep_and_broken_json_is_a_client_error(stack, http):
    auth = {**stack.auth("GABUSE"), "Content-Type": "application/json"}
    bodies = {
        "deep array": b"[" * 20_000 + b"]" * 20_000,
        "deep object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "invalid utf-8": b'{"prompt": "\xff\xfe\xfd"}',
        "truncated": b'{"prompt": "a',
        "not an object": b'"just a string"',
        "nul bytes": b'{"prompt": "a\\u0000b"}',
    }
    for name, body in bodies.items():
        for path in ["/", "/mixtapes", f"/mint/{SMOL}", "/login"]:
            answer = await http.post(path, content=body, headers=auth)
            assert 400 <= answer.status_code < 500, (name, path, answer.status_code, answer.text[:200])


TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc", "..%5C..%5Cwindows", "%00", "a%0d%0aInjected:%201",
              "..", "%2F", "x" * 5000]  # fmt: skip
PATHS = ["/{p}", "/{p}/{p}", "/{p}/events", "/retry/{p}", "/likes/{p}", "/playlist/{p}", "/mixtapes/{p}",
         "/song/{p}.mp3", "/image/{p}.png", "/mint/{p}"]  # fmt: skip


@pytest.mark.parametrize("template", PATHS)
async def test_traversal_and_crlf_in_every_path_parameter(stack, http, template):
    for value in TRAVERSALS:
        path = template.format(p=value)
        for method in ("GET", "PUT", "POST", "DELETE"):
            answer = await http.request(method, path, headers=stack.auth("GABUSE"))
            assert answer.status_code < 500, (method, path, answer.status_code)
            assert "injected" not in {name.lower() for name in answer.headers}
            if template.startswith(("/song/", "/image/")):
                assert answer.status_code != 200, (method, path)  # no file is ever served from outside the store


async def test_crlf_in_names_that_are_stored_never_reaches_a_header(stack, http):
    auth = stack.auth("GABUSE")
    made = await http.post("/mixtapes", json={"title": "a\r\nInjected: 1", "desc": "x\r\nSet-Cookie: evil=1",
                                              "smols": []}, headers=auth)  # fmt: skip
    assert made.status_code < 500
    nul = await http.post("/mixtapes", json={"title": "a\u0000b", "desc": "", "smols": []}, headers=auth)
    assert 400 <= nul.status_code < 500
    listed = await http.get("/playlist/a%0d%0aInjected:%201")
    assert listed.status_code < 500 and "injected" not in {name.lower() for name in listed.headers}
    body = {"type": "create", "username": "u\r\nSet-Cookie: evil=1", "address": "G\r\nInjected: 1"}
    login = await http.post("/login", json=body, headers={"Origin": "http://localhost:8000"})
    assert 400 <= login.status_code < 500
    assert "evil" not in login.headers.get("set-cookie", "") and "injected" not in {n.lower() for n in login.headers}
