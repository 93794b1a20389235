"""The OpenAPI document, completed where a handler checks its input itself (to answer 400 as the contract says, or
against this deployment's settings) and the generated schema would allow what the handler refuses."""

from fastapi import FastAPI

from smol.ids import SMOL_ID_PATTERN
from smol.settings import Settings

SCALE_PATTERN = "^([1-9]|[12][0-9]|3[0-2])$"


def completed_openapi(app: FastAPI, settings: Settings) -> dict:
    if app.openapi_schema is None:
        _complete(FastAPI.openapi(app), settings)  # FastAPI.openapi keeps the document in app.openapi_schema
    return app.openapi_schema


def _complete(schema: dict, settings: Settings) -> None:
    components, paths = schema["components"]["schemas"], schema["paths"]
    create = components["CreateSmol"]["properties"]
    create["song_model"] = {"anyOf": [{"enum": settings.chain("song")}, {"type": "null"}],
                            "description": "a configured song provider to ask first"}  # fmt: skip
    url = {"type": "string", "maxLength": 2000, "format": "uri", "pattern": "^https?://"}
    create["webhook_url"]["anyOf"] = [url, {"const": ""}, {"type": "null"}]  # "" is no webhook, as null is
    xdr = {"type": "string", "pattern": r"\S", "description": "the signed transaction (base64 XDR)"}
    ids = {"type": "array", "items": {"type": "string", "pattern": SMOL_ID_PATTERN}, "minItems": 1,
           "maxItems": settings.mint_max_batch, "uniqueItems": True}  # fmt: skip
    for path, fields in (("/mint/{id}", {"xdr": xdr}), ("/mint", {"xdr": xdr, "ids": ids})):
        body = _body(components, paths[path]["post"])
        body["properties"].update(fields)
        body["required"] = list(fields)
    for method in ("get", "head"):
        for parameter in paths["/image/{id}.png"][method]["parameters"]:
            if parameter["name"] == "scale":
                parameter["schema"] = {"type": "string", "pattern": SCALE_PATTERN, "description": "integer 1–32"}


def _body(components: dict, operation: dict) -> dict:
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return components[reference.rsplit("/", 1)[-1]]
