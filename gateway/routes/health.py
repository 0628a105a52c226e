"""Operations routes: liveness and readiness, metrics, every service's health,
the OpenAPI document and the docs page, CORS preflight, and the problem answer
for unknown API paths.

These are plain ``@http`` routes, not ``@endpoint`` ones: they are not in the
OpenAPI document. Public (the API port): liveness, readiness, the documents.
Internal (``GATEWAY_INTERNAL_ADDRESS``, never routed by the Ingress): metrics
and the detailed health of the gateway and every service, reasons included."""

from __future__ import annotations

import time
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from werkzeug.wrappers import Request, Response

from gateway.endpoint import cors_headers, finish
from gateway.http import json_response, problem
from gateway.metrics import metrics_response
from gateway.openapi import docs_asset, docs_page, openapi_document
from gateway.routes.base import RoutesBase
from gateway.server import http, internal_http
from shared.logging import get_logger
from shared.probes import reachable_amqp
from shared.sql import ping

log = get_logger(__name__)

SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")
"""The services whose RPC proxies the internal health asks (each a dependency of GatewayService)."""
READY_TIMEOUT_SECONDS = 3.0


class HealthRoutes(RoutesBase):
    """The routes operators and tools use, beside the API itself."""

    nameko_config = Config()

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

    @internal_http("GET", "/metrics")
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
        """Ready to serve: what this process itself needs answers, its database
        and the broker. Not the services: every gateway pod would leave the
        Service when one of them is slow, and all of the API with it (logins
        and reads need no service; a command to one that is away gets its own
        503). Each check says only "ok" or "failing"; the reasons go to the log
        and to the internal ``/health/services``."""
        reasons = self._needs()
        ready = all(reason is None for reason in reasons.values())
        if not ready:
            log.warning("not ready", **{k: v for k, v in reasons.items() if v is not None})
        checks = {name: "ok" if reason is None else "failing" for name, reason in reasons.items()}
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        return finish(self.scope, request, json_response(body, status=200 if ready else 503))

    @internal_http("GET", "/health/services")
    def services_health(self, request: Request) -> Response:
        """Everything, with its reasons, for operators: the gateway's own checks
        and every service's answer to its health RPC through the broker
        (within ``READY_TIMEOUT_SECONDS``); 200 only when all of it is ok."""
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
        healthy = all(c.get("status") == "ok" for c in components.values())
        body = {"status": "ok" if healthy else "failing", "components": components}
        return finish(self.scope, request, json_response(body, status=200 if healthy else 503))

    def _needs(self) -> dict[str, str | None]:
        """What readiness depends on: each check's failure reason, None if it answers."""
        reasons: dict[str, str | None] = {"database": None, "broker": None}
        try:
            ping(self.idempotency.engine)
        except Exception as exc:
            reasons["database"] = str(exc).splitlines()[0][:500]
        reasons["broker"] = reachable_amqp(str(self.nameko_config["AMQP_URI"]))
        return reasons

    def _own_health(self) -> dict[str, Any]:
        checks: dict[str, str] = dict(self.profiles.health())
        for name, reason in self._needs().items():
            checks[name] = "ok" if reason is None else f"failing: {reason}"
        try:
            self.blobs.store.exists("0" * 64)
            checks["blob_store"] = "ok"
        except Exception as exc:
            checks["blob_store"] = f"failing: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        return {"service": "gateway", "status": "ok" if healthy else "failing", "checks": checks}
