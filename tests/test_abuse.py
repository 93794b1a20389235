"""What a hostile client can send: bad tokens, deep or broken JSON, traversal and CR/LF in every path parameter,
lone surrogates anywhere, absurd ranges. Each gets a 4xx; none a 5xx, nothing reaches a response header, and no
error body echoes text it cannot encode."""

import base64
import json
import time

import asyncpg
import jwt
import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from api.errors import service_unavailable, validation_error
from tests.support import ADDRESS, JWT_SECRET, unsigned_jwt

SMOL = "ab" * 32
BAD_TOKENS = {
    "alg-none": unsigned_jwt({"sub": "GEVIL", "exp": time.time() + 600}),
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


def _cursor(created_at: str, smol_id) -> str:
    return base64.b64encode(json.dumps({"createdAt": created_at, "id": smol_id}).encode()).decode()


UNDECODABLE_CURSORS = {
    "lone-surrogate-id": _cursor("2030-01-01 00:00:00", "\ud800"),
    "nul-in-id": _cursor("2030-01-01 00:00:00", "a\u0000b"),
    "lone-surrogate-date": _cursor("\udfff", "ab" * 32),
    "number-id": _cursor("2030-01-01 00:00:00", 5),
}


@pytest.mark.parametrize("path", ["/", "/created", "/liked", "/playlist/frogs"])
async def test_an_undecodable_cursor_is_ignored(stack, http, finished_smol, path):
    auth = stack.auth(ADDRESS)
    first_page = await http.get(path, headers=auth)
    assert first_page.status_code == 200
    for kind, cursor in UNDECODABLE_CURSORS.items():
        answer = await http.get(path, params={"cursor": cursor}, headers=auth)
        assert answer.status_code == 200, (kind, answer.status_code, answer.text[:200])
        assert answer.json()["smols"] == first_page.json()["smols"], kind


SURROGATE_BODIES = [
    ("/login", b'{"type": "create", "keyId": "\\ud800", "contractId": "C", "response": {}}'),
    ("/login", b'{"type": "\\udfff"}'),
    ("/", b'{"prompt": "a song \\ud800 about frogs"}'),
    ("/", b'{"prompt": "fine", "playlist": "\\udc00"}'),
    ("/", b'{"prompt": "fine", "metadata": {"\\ud800": "key is a lone surrogate"}}'),
    ("/", b'{"prompt": 5, "unknown": "\\ud800"}'),  # invalid as well: still 400, and nothing echoed
    ("/mixtapes", b'{"title": "\\ud800", "desc": "", "smols": ["' + b"ab" * 32 + b'"]}'),
    ("/mixtapes", b'{"title": "\\ud800"}'),
    (f"/mint/{SMOL}", b'{"xdr": "\\ud800"}'),
]


@pytest.mark.parametrize("path,body", SURROGATE_BODIES)
async def test_a_lone_surrogate_in_any_json_string_is_400(stack, http, path, body):
    headers = {**stack.auth("GABUSE"), "Content-Type": "application/json", "Origin": "http://localhost:8000"}
    answer = await http.post(path, content=body, headers=headers)
    assert answer.status_code == 400, (answer.status_code, answer.text[:200])
    assert "surrogate" in answer.text


NON_FINITE_BODIES = [
    ("POST", "/login", b'{"type": NaN, "keyId": "a", "response": {}}'),
    ("POST", "/", b'{"prompt": NaN}'),
    ("POST", "/", b'{"prompt": "fine", "public": Infinity}'),
    ("POST", "/", b'{"prompt": "fine", "song_params": {"duration": 1e999}}'),
    ("POST", "/", b'{"prompt": "fine", "metadata": {"a": -Infinity}}'),
    ("POST", "/", b'{"prompt": "fine", "metadata": {"a": 1' + b"0" * 400 + b'.5}}'),
    ("POST", "/mixtapes", b'{"title": NaN, "smols": []}'),
    ("PUT", "/mixtapes/0123456789abcdef", b'{"title": NaN, "smols": []}'),
    ("POST", "/keys", b'{"name": -Infinity}'),
    ("POST", f"/mint/{SMOL}", b'{"xdr": NaN}'),
    ("POST", "/mint", b'{"xdr": "x", "ids": NaN}'),
]


@pytest.mark.parametrize("method,path,body", NON_FINITE_BODIES)
async def test_a_number_json_cannot_hold_is_400_wherever_it_is(stack, http, method, path, body):
    """Python's JSON parser takes NaN, Infinity and numbers too large for a float; JSON does not."""
    headers = {**stack.auth("GABUSE"), "Content-Type": "application/json", "Origin": "http://localhost:8000"}
    answer = await http.request(method, path, content=body, headers=headers)
    assert answer.status_code == 400, (answer.status_code, answer.text[:200])
    assert "finite" in answer.text


async def test_large_and_precise_numbers_that_are_finite_are_read_as_before(stack, http):
    headers = {**stack.auth("GABUSE"), "Content-Type": "application/json"}
    answer = await http.post("/mixtapes", content=b'{"title": 1.5e3, "smols": []}', headers=headers)
    assert answer.status_code == 422 and "finite" not in answer.text  # (a number is no title: the usual 422)


async def test_surrogate_pairs_are_ordinary_text(stack, http, finished_smol):
    """JSON's escaped emoji (a high and a low surrogate together) is valid text, not the case above."""
    body = b'{"title": "frogs \\ud83d\\udc38", "desc": "", "smols": ["' + finished_smol["d1"]["Id"].encode() + b'"]}'
    headers = {**stack.auth(ADDRESS), "Content-Type": "application/json"}
    made = await http.post("/mixtapes", content=body, headers=headers)
    assert made.status_code == 201, made.text
    assert (await http.get(f"/mixtapes/{made.json()['id']}")).json()["Title"] == "frogs \U0001f438"


@pytest.mark.parametrize("claims", [{"sub": "\ud800"}, {"sub": "G\u0000"}, {"sub": "GABUSE", "usr": "\udfff"},
                                    {"sub": "GABUSE", "key": "\ud800"}])  # fmt: skip
async def test_a_signed_token_with_unencodable_claims_is_401(http, claims):
    token = jwt.encode({**claims, "exp": time.time() + 600}, JWT_SECRET, algorithm="HS256")
    for method, path in PROTECTED:
        as_header = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, json={})
        assert as_header.status_code == 401, (method, path, as_header.status_code)
        as_cookie = await http.request(method, path, headers={"Cookie": f"smol_token={token}"}, json={})
        assert as_cookie.status_code == 401, (method, path, as_cookie.status_code)


SURROGATE_BYTES = "%ED%A0%80"  # what UTF-8 would be for U+D800: invalid UTF-8, decoded as replacement characters


async def test_surrogate_bytes_in_query_path_headers_and_cookies_are_no_server_error(stack, http):
    raw = b"\xed\xa0\x80"
    for path in [f"/?cursor={SURROGATE_BYTES}&limit={SURROGATE_BYTES}", f"/playlist/{SURROGATE_BYTES}",
                 f"/{SURROGATE_BYTES}", f"/image/{SMOL}.png?scale={SURROGATE_BYTES}", f"/mixtapes/{SURROGATE_BYTES}",
                 f"/song/{SURROGATE_BYTES}.mp3", f"/created?cursor={SURROGATE_BYTES}"]:  # fmt: skip
        answer = await http.get(path, headers=stack.auth("GABUSE"))
        assert answer.status_code < 500, (path, answer.status_code)
    for name in ["Authorization", "Cookie", "Range", "If-None-Match", "Origin", "Idempotency-Key", "X-API-Key"]:
        for path in ["/created", f"/{SMOL}", "/likes"]:
            answer = await http.get(path, headers=[(name.encode(), b"x=" + raw)])
            assert answer.status_code < 500, (name, path, answer.status_code)
    answer = await http.get("/created", headers={"Cookie": b"smol_token=" + raw})
    assert answer.status_code == 401


async def test_absurd_ranges_are_416_or_clamped(http, finished_smol):
    song = f"/song/{finished_smol['d1']['Song_1']}.mp3"
    whole = await http.get(song)
    size = len(whole.content)
    huge = "9" * 4400  # past Python's 4300-digit int() limit
    beyond = await http.get(song, headers={"Range": f"bytes={huge}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert (await http.get(song, headers={"Range": f"bytes={huge}-{huge}"})).status_code == 416
    suffix = await http.get(song, headers={"Range": f"bytes=-{huge}"})
    assert suffix.status_code == 206 and suffix.content == whole.content
    to_the_end = await http.get(song, headers={"Range": f"bytes=0-{huge}"})
    assert to_the_end.status_code == 206 and to_the_end.content == whole.content
    zeros = await http.get(song, headers={"Range": f"bytes={'0' * 4400}5-{'0' * 4400}9"})
    assert zeros.status_code == 206 and zeros.content == whole.content[5:10]


@pytest.mark.parametrize("scale", ["\u00b2", "9" * 5000, "-1", "0", "33", "1.5", "\u0663"])
async def test_a_scale_that_is_not_1_to_32_is_400(http, finished_smol, scale):
    answer = await http.get(f"/image/{finished_smol['d1']['Id']}.png", params={"scale": scale})
    assert answer.status_code == 400, (scale, answer.status_code)


async def test_405_names_every_method_of_the_path(http):
    for path, allowed in [("/", "GET, POST"), ("/mixtapes", "GET, POST"), (f"/{SMOL}", "GET, PUT, DELETE"),
                          (f"/song/{SMOL}.mp3", "GET, HEAD")]:  # fmt: skip
        answer = await http.request("PATCH", path)
        assert answer.status_code == 405 and answer.headers["allow"] == allowed, (path, answer.headers.get("allow"))


async def test_validation_errors_never_echo_text_they_cannot_encode():
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    missing = {"type": "missing", "loc": ("body", "prompt"), "msg": "Field required", "input": {}}
    plain = await validation_error(request, RequestValidationError([missing]))
    assert plain.status_code == 422 and json.loads(plain.body) == {"detail": [{**missing, "loc": ["body", "prompt"]}]}
    error = {"type": "string_type", "loc": ("body", "\ud800"), "msg": "bad", "input": ["\udfff", {"\ud800": 1}]}
    escaped = await validation_error(request, RequestValidationError([error]))
    assert escaped.status_code == 400
    assert json.loads(escaped.body)["detail"][0]["input"] == ["\\udfff", {"\\ud800": 1}]


async def test_a_query_argument_asyncpg_cannot_encode_is_400_not_503():
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    answer = await service_unavailable(request, asyncpg.exceptions._base.DataError("invalid input for query argument"))
    assert answer.status_code == 400
    down = await service_unavailable(request, ConnectionRefusedError())
    assert down.status_code == 503 and down.headers["retry-after"]
