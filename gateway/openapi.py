"""The OpenAPI 3 document, generated from the ``@endpoint`` declarations, and the
docs page, whose Swagger UI assets the gateway serves itself (no CDN)."""

from __future__ import annotations

import json
import mimetypes
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from gateway.endpoint import ROUTES, Route, openapi_path
from gateway.errors import TITLES
from shared.pagination import PageQuery

DOCS_ASSETS = Path(swagger_ui_path)
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 7807 problem details",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "machine-readable error code"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "per-field messages, for validation errors",
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "tags": list(route.tags)}
    if route.description:
        op["description"] = route.description
    params = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", openapi_path(route.path))
    ]
    if route.query is not None:
        params.append({"in": "query", "schema": route.query})
    if route.idempotent:
        params.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": route.key_required,
                "schema": {"type": "string", "maxLength": 200},
                "description": "retries with the same key get the first answer (24 h)"
                + ("; required: this request moves money" if route.key_required else ""),
            }
        )
    if route.cached_by:
        params.append(
            {
                "in": "header",
                "name": "If-None-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "the ETag of an earlier answer: 304 while it is still current",
            }
        )
    params.append(
        {"in": "header", "name": "X-Request-ID", "required": False, "schema": {"type": "string"}}
    )
    op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    if route.multipart is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": route.multipart}},
        }
    ok: dict[str, Any] = {"description": "success"}
    if route.response is not None:
        ok["content"] = {"application/json": {"schema": route.response}}
        for media_type in route.alternatives:
            ok["content"][media_type] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(route.status): ok}
    if route.cached_by:
        ok["headers"] = {"ETag": {"schema": {"type": "string"}}}
        responses["304"] = {"description": "not modified since the ETag in If-None-Match"}
    statuses = set(route.errors) | {400, 422}
    if route.method in ("POST", "PUT", "PATCH"):
        statuses |= {411, 413}  # a chunked body, a body over the route's limit
    if route.auth == "required":
        statuses |= {401, 403}
        op["security"] = [{"bearer": []}]
    if route.role:
        op["x-required-role"] = route.role
    if route.verified:
        op["x-requires-verified-email"] = True
    elif route.auth == "optional":
        op["security"] = [{}, {"bearer": []}]
    if route.idempotent:
        statuses |= {409}
    if route.key_required:
        statuses |= {428}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": TITLES.get(status, "error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    op["responses"] = responses
    return op


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    spec = APISpec(
        title="Freelance marketplace API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "The HTTP API for web and mobile frontends."},
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.components.schema("PageQuery", schema=PageQuery)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Marketplace API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs-init.js"></script>
</body></html>
"""

DOCS_INIT = "SwaggerUIBundle({url: '/api/v1/openapi.json', dom_id: '#docs'});\n"


DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The page loads only its own scripts (Swagger UI renders inline styles and
data: images), and no other site may frame it."""


def docs_page() -> Response:
    response = Response(DOCS_PAGE, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def docs_asset(name: str) -> Response | None:
    if name == "docs-init.js":
        return Response(DOCS_INIT, mimetype="text/javascript")
    if not _ASSET_NAME.match(name) or not (DOCS_ASSETS / name).is_file():
        return None
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response((DOCS_ASSETS / name).read_bytes(), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def main() -> None:
    """``python -m gateway.openapi``: the document on stdout, for the web app's
    typed client (``web/``) and anyone else generating one."""
    import gateway.service  # noqa: F401  (declares every route)

    json.dump(openapi_document(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
