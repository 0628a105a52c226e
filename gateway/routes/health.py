"""Operations routes: liveness and readiness, metrics, the OpenAPI document and
the docs page, CORS preflight, and the problem answer for unknown API paths.

These are plain ``@http`` routes, not ``@endpoint`` ones: they are not in the
OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

import eventlet
import orjson
from werkzeug.wrappers import Request, Response

from gateway.endpoint import cors_headers, finish
from gateway.http import json_response, problem
from gateway.metrics import metrics_response
from gateway.openapi import docs_asset, docs_page, openapi_document
from gateway.routes.base import RoutesBase
from gateway.server import http
from shared.logging import get_logger

log = get_logger(__name__)

SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")
"""The services whose RPC proxies readiness asks (each a dependency of GatewayService)."""
READY_TIMEOUT_SECONDS = 3.0


class HealthRoutes(RoutesBase):
    """The routes operators and tools use, beside the API itself."""

    # -- documents and operations ---------------------------------------------

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request: Request) -> Response:
        return finish(self.scope, request, json_response(openapi_document()))

    @http("GET", "/docs")
    def docs(self, request: Request) -> Response:
        return docs_page()

    @http("GET", "/docs/static/<name>")
    def docs_static(self, request: Request, name: str) -> Response:
        return docs_asset(name) or problem(404, "not_found", "Not found")

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        return metrics_response()

    @http("OPTIONS", "/api/v1/<path:rest>")
    def preflight(self, request: Request, rest: str) -> Response:
        headers = cors_headers(request)
        if headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                    "Access-Control-Allow-Headers": (
                        "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
                    ),
                    "Access-Control-Max-Age": "600",
                }
            )
        return finish(self.scope, request, Response(status=204, headers=headers))

    @http("GET,POST,PUT,PATCH,DELETE", "/api/v1/<path:rest>")
    def unknown(self, request: Request, rest: str) -> Response:
        return finish(
            self.scope, request, problem(404, "not_found", "Not found", "no such endpoint")
        )

    @http("GET", "/health/live")
    def live(self, request: Request) -> Response:
        """The process is up and serving HTTP."""
        return finish(self.scope, request, json_response({"status": "ok"}))

    @http("GET", "/health/ready")
    def ready(self, request: Request) -> Response:
        """Every service answers its health RPC through the broker in time (and
        reports its event store and database reachable), and the gateway's own
        database and blob store work."""
        components: dict[str, Any] = {"gateway": self._own_health()}
        pending = {}
        for name in SERVICES:
            try:
                pending[name] = getattr(self, name).health.call_async()
            except Exception as exc:  # no queue bound: the service is not running
                components[name] = {"status": "unreachable", "reason": str(exc)}
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for name, reply in pending.items():
            try:
                with eventlet.Timeout(max(0.01, deadline - time.monotonic())):
                    components[name] = reply.result()
            except eventlet.Timeout:
                components[name] = {"status": "unreachable", "reason": "no answer in time"}
            except Exception as exc:
                components[name] = {"status": "failing", "reason": str(exc)}
        ready = all(c.get("status") == "ok" for c in components.values())
        if not ready:
            log.warning("not ready", components=orjson.dumps(components).decode())
        body = {"status": "ready" if ready else "not_ready", "components": components}
        return finish(self.scope, request, json_response(body, status=200 if ready else 503))

    def _own_health(self) -> dict[str, Any]:
        checks: dict[str, str] = dict(self.profiles.health())
        try:
            self.idempotency.engine.connect().close()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {exc}"
        try:
            self.blobs.store.exists("0" * 64)
            checks["blob_store"] = "ok"
        except Exception as exc:
            checks["blob_store"] = f"failing: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        return {"service": "gateway", "status": "ok" if healthy else "failing", "checks": checks}
