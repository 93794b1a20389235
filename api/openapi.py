"""The OpenAPI document, completed where a handler checks its input itself (to answer 400 as the contract says, or
against this deployment's settings) and the generated schema would allow what the handler refuses."""

from fastapi import FastAPI

from api.deps import _optional_user, _user, viewer_address
from api.models import MAX_METADATA_VALUE, METADATA_KEY_PATTERN
from smol.ids import SMOL_ID_PATTERN
from smol.settings import Settings

SCALE_PATTERN = "^([1-9]|[12][0-9]|3[0-2])$"


def completed_openapi(app: FastAPI, settings: Settings) -> dict:
    if app.openapi_schema is None:
        _complete(FastAPI.openapi(app), settings)  # FastAPI.openapi keeps the document in app.openapi_schema
        _for_generated_clients(app, app.openapi_schema)
    return app.openapi_schema


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "a session token (JWT) or an API key (smol_sk_…)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an API key (smol_sk_…)"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "smol_token", "description": "the browser session"},
}
ANY_CREDENTIAL = [{"bearer": []}, {"apiKey": []}, {"cookie": []}]
OPTIONAL_CREDENTIAL = [*ANY_CREDENTIAL, {}]
# For a route that reads its caller itself (api/deps.py pool_and_caller), where its dependencies cannot tell
READS_CALLER = {"security": OPTIONAL_CREDENTIAL}
BINARY = {"type": "string", "format": "binary"}


def _for_generated_clients(app: FastAPI, schema: dict) -> None:
    """What client generators need and FastAPI leaves out (our auth is read by hand): the auth schemes and which
    operations require or accept them, a schema for plain-text and binary bodies, and `metadata[key]=value`."""
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    for route in _api_routes(app.routes):
        auth = _auth_of(getattr(route, "dependant", None))
        if auth is None or not getattr(route, "include_in_schema", False):
            continue
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = ANY_CREDENTIAL if auth == "required" else OPTIONAL_CREDENTIAL
    for path in schema["paths"].values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                for content_type, content in response.get("content", {}).items():
                    if content_type == "text/plain" and "schema" not in content:
                        content["schema"] = {"type": "string"}
                    elif content_type.startswith(("audio/", "image/")) and "schema" not in content:
                        content["schema"] = BINARY
    created = schema["paths"]["/created"]["get"]
    created["parameters"].append({
        "name": "metadata", "in": "query", "style": "deepObject", "explode": True, "required": False,
        "description": "metadata[key]=value: only smols whose metadata holds these pairs",
        "schema": {"type": "object", "propertyNames": {"pattern": METADATA_KEY_PATTERN}, "additionalProperties": {
            "type": "string", "maxLength": MAX_METADATA_VALUE, "pattern": "^[^\\x00]*$"}},
    })  # fmt: skip


def _api_routes(routes):
    """Every route, those of included routers too (FastAPI keeps them apart; ours are included without a prefix)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)
        else:
            yield route


def _auth_of(dependant) -> str | None:
    """"required" when the route depends on a signed-in caller, "optional" when it reads one if there is, else None."""
    if dependant is None:
        return None
    found = None
    for sub in dependant.dependencies:
        if sub.call is _user:
            return "required"
        if sub.call in (_optional_user, viewer_address):
            found = "optional"
        found = _auth_of(sub) or found
        if found == "required":
            return found
    return found


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
