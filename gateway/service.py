"""The gateway: the HTTP API in front of the services, for web and mobile frontends."""

from __future__ import annotations

import time
from typing import Any

import eventlet
from nameko.rpc import RpcProxy
from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from gateway.http import CORRELATION_HEADER, HttpRequestContext, json_response
from shared.logging import get_logger

log = get_logger(__name__)

SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")
READY_TIMEOUT_SECONDS = 3.0


class GatewayService:
    name = "gateway"

    correlation_id = HttpRequestContext()
    identity = RpcProxy("identity")
    projects = RpcProxy("projects")
    bidding = RpcProxy("bidding")
    contracts = RpcProxy("contracts")
    escrow = RpcProxy("escrow")
    messaging = RpcProxy("messaging")
    reputation = RpcProxy("reputation")

    def _headers(self) -> dict[str, str]:
        return {CORRELATION_HEADER: self.correlation_id}

    @http("GET", "/health/live")
    def live(self, request: Request) -> Response:
        """The process is up and serving HTTP."""
        return json_response({"status": "ok"}, headers=self._headers())

    @http("GET", "/health/ready")
    def ready(self, request: Request) -> Response:
        """Every service answers its health RPC through the broker in time,
        and reports its event store and database reachable."""
        pending = {name: getattr(self, name).health.call_async() for name in SERVICES}
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        components: dict[str, Any] = {}
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
            log.warning("not ready", components=components)
        return json_response(
            {"status": "ready" if ready else "not_ready", "components": components},
            status=200 if ready else 503,
            headers=self._headers(),
        )
