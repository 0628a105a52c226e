"""What every marketplace service has: request context, its event log, its own
read-model database, and a health check the gateway's readiness probe calls."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from nameko.rpc import rpc as nameko_rpc

from shared.context import RequestContext
from shared.database import ReadModelDatabase
from shared.errors import ServiceError
from shared.eventlog import EventLog

rpc = nameko_rpc(expected_exceptions=ServiceError)
"""Every service's RPC entrypoint: a ``ServiceError`` is an answer to the caller
(logged as a warning), anything else a failure (logged with its traceback)."""


class MarketplaceService:
    """Base class; a service sets ``name`` and may replace ``db`` to add its tables."""

    name: str
    context = RequestContext()
    event_log = EventLog()
    db = ReadModelDatabase()

    @rpc
    def health(self) -> dict[str, Any]:
        checks: dict[str, str] = {}
        try:
            self.event_log.store.ping()
            checks["event_store"] = "ok"
        except Exception as exc:
            checks["event_store"] = f"failing: {exc}"
        try:
            with self.db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        return {"service": self.name, "status": "ok" if healthy else "failing", "checks": checks}
