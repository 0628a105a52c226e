"""What every marketplace service has: request context, its event log, its own
read-model database, a clock, and a health check the gateway's readiness probe calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from nameko.dependency_providers import Config
from werkzeug.wrappers import Request, Response

from shared.actor_assertion import VerifiedRpc
from shared.clock import Clock
from shared.context import RequestContext
from shared.database import ReadModelDatabase
from shared.errors import ServiceError
from shared.eventlog import EventLog
from shared.health import health_http, health_response_body
from shared.probes import reachable_amqp
from shared.sql import ping

Entrypoint = Callable[[Callable[..., Any]], Callable[..., Any]]
rpc: Entrypoint = VerifiedRpc.decorator(expected_exceptions=ServiceError)
"""Every service's RPC entrypoint: the actor is the one the gateway signed for
(``shared.actor_assertion``); a ``ServiceError`` is an answer to the caller
(logged as a warning), anything else a failure (logged with its traceback)."""


class MarketplaceService:
    """Base class; a service sets ``name`` and may replace ``db`` to add its tables."""

    name: str
    context = RequestContext()
    event_log = EventLog()
    db = ReadModelDatabase()
    nameko_config = Config()
    clock = Clock()

    @property
    def config_amqp_uri(self) -> str:
        return str(self.nameko_config["AMQP_URI"])

    @rpc
    def health(self) -> dict[str, Any]:
        """For the gateway's readiness: answering proves the broker path too."""
        return health_response_body(self._checks(), self.name)[1]

    @health_http("GET", "/health/live")
    def http_live(self, request: Request) -> Response:
        return Response(
            orjson.dumps({"service": self.name, "status": "ok"}), mimetype="application/json"
        )

    @health_http("GET", "/health/ready")
    def http_ready(self, request: Request) -> Response:
        """Ready: the event store, the database and the broker answer."""
        checks = self._checks()
        reason = reachable_amqp(self.config_amqp_uri)
        checks["broker"] = "ok" if reason is None else f"failing: {reason}"
        status, body = health_response_body(checks, self.name)
        return Response(orjson.dumps(body), status=status, mimetype="application/json")

    def _checks(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            self.event_log.store.ping()
            checks["event_store"] = "ok"
        except Exception as exc:
            checks["event_store"] = f"failing: {exc}"
        try:
            ping(self.db.engine)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {exc}"
        return checks
