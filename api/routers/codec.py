"""Temporal's remote codec protocol, for operators: the Web UI (and `temporal --codec-endpoint`) sends the encrypted
payloads of a history here and shows what comes back decoded.

Protocol: `POST <endpoint>/decode` and `POST <endpoint>/encode`, body and answer the protobuf JSON of
`temporal.api.common.v1.Payloads`; a bad body or a payload that does not open is 400.

An operator is whoever shows `Authorization: Bearer <SMOL_CODEC_TOKEN>`, or a session (Bearer or the smol_token
cookie) of an address in SMOL_ADMIN_ADDRESSES. The Web UI cannot send a header of our choosing over http, so the
token may also be the endpoint's path: `<api>/codec/<SMOL_CODEC_TOKEN>` (what `make run` gives the dev server's UI);
with "include cross-origin credentials" set in the UI, the session cookie works too.
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from google.protobuf import json_format
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from temporalio.api.common.v1 import Payloads

from api.deps import COOKIE, session_claims
from smol.codec import CodecError
from smol.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from smol.settings import Settings

router = APIRouter(tags=["operators"])

_BYTES = {"type": "string", "format": "byte"}
PAYLOADS_SCHEMA = {
    "type": "object",
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"metadata": {"type": "object", "additionalProperties": _BYTES}, "data": _BYTES},
            },
        }
    },
}
BAD_BODY = 'the body must be Payloads as protobuf JSON: {"payloads": [{"metadata": {"k": "<base64>"}, "data": ""}]}'
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
ROUTE = {
    "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}}},
    "responses": {
        200: {"description": "The payloads", "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}},
        400: {"description": "Not Payloads JSON, or a payload that does not open", "content": _TEXT},
        401: {"description": "No operator credentials", "content": _TEXT},
        403: {"description": "A session that is not an operator's", "content": _TEXT},
    },
    "response_class": Response,
}


def _same(given: str, secret) -> bool:
    return secret is not None and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())


async def _operator(request: Request) -> None:
    settings: Settings = request.app.state.settings
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" else ""
    if bearer and _same(bearer, settings.codec_token):
        return
    token = bearer or request.cookies.get(COOKIE)
    if not token:
        raise Unauthorized("operators only: Bearer SMOL_CODEC_TOKEN, or the session of an operator's address")
    if (await session_claims(request, token))["sub"] not in settings.admin_addresses:
        raise Forbidden("operators only")


def _path_token(request: Request, token: str) -> None:
    if not _same(token, request.app.state.settings.codec_token):
        raise NotFound("not found")


def _parse(body: bytes) -> Payloads:
    try:
        return json_format.Parse(body, Payloads())
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        raise InvalidInput(BAD_BODY) from None


async def _apply(request: Request, decode: bool) -> Response:
    payloads = _parse(await request.body())
    codec = request.app.state.temporal.data_converter.payload_codec
    try:
        done = await (codec.decode if decode else codec.encode)(payloads.payloads)
    except CodecError as exc:
        raise InvalidInput(str(exc)) from None
    return Response(json_format.MessageToJson(Payloads(payloads=done)), media_type="application/json")


Operator = Annotated[None, Depends(_operator)]
PathToken = Annotated[None, Depends(_path_token)]


@router.post("/codec/decode", summary="Decode Temporal payloads (remote codec, operators only)", **ROUTE)
async def decode(request: Request, _: Operator) -> Response:
    return await _apply(request, decode=True)


@router.post("/codec/encode", summary="Encode Temporal payloads (remote codec, operators only)", **ROUTE)
async def encode(request: Request, _: Operator) -> Response:
    return await _apply(request, decode=False)


@router.post("/codec/{token}/decode", include_in_schema=False)
async def decode_with_path_token(request: Request, _: PathToken) -> Response:
    return await _apply(request, decode=True)


@router.post("/codec/{token}/encode", include_in_schema=False)
async def encode_with_path_token(request: Request, _: PathToken) -> Response:
    return await _apply(request, decode=False)


class CodecCors:
    """CORS of /codec/*, preflight included, for the Web UI's origins (SMOL_CODEC_CORS_ORIGINS) only. Added outside
    the app's own CORS (which is off unless SMOL_CORS_ORIGINS is set), so /codec/* answers no other origin."""

    PREFLIGHT = {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
        "Access-Control-Max-Age": "600",
    }

    def __init__(self, app, origins: list[str]):
        self.app, self.origins = app, set(origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/codec/"):
            return await self.app(scope, receive, send)
        origin = Headers(scope=scope).get("origin")
        allowed = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
        if origin not in self.origins:
            allowed = {}
        if scope["method"] == "OPTIONS":
            if not allowed:
                return await PlainTextResponse("origin not allowed", status_code=403)(scope, receive, send)
            preflight = Response(status_code=204, headers={**allowed, **self.PREFLIGHT, "Vary": "Origin"})
            return await preflight(scope, receive, send)

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name in ("access-control-allow-origin", "access-control-allow-credentials"):
                    del headers[name]
                headers.update(allowed)
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)
