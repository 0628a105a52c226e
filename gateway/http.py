"""HTTP conventions of the gateway: JSON bodies, machine-readable errors, request ids."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import structlog
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from shared.context import ACTOR_ID, CAUSATION_ID, CORRELATION_ID, Context, bind_log_context

CORRELATION_HEADER = "X-Correlation-ID"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    """Every error the gateway returns has this shape: ``{"error": {code, message, ...}}``."""
    return json_response({"error": {"code": code, "message": message, **details}}, status)


class HttpRequestContext(DependencyProvider):
    """Starts a request's context from its headers and passes it on to every RPC call.

    The correlation id comes from ``X-Correlation-ID`` (or is new); the request
    itself gets a new id, the causation id of whatever it sets off.
    """

    def get_dependency(self, worker_ctx: Any) -> str:
        data = worker_ctx.data
        if not data.get(CORRELATION_ID):
            request = worker_ctx.args[0] if worker_ctx.args else None
            incoming = (
                request.headers.get(CORRELATION_HEADER) if isinstance(request, Request) else None
            )
            valid = incoming and len(incoming) <= 100 and incoming.isprintable()
            data[CORRELATION_ID] = incoming if valid else str(uuid.uuid4())
            data[CAUSATION_ID] = str(uuid.uuid4())
            data.setdefault(ACTOR_ID, "anonymous")
        return str(data[CORRELATION_ID])

    def worker_setup(self, worker_ctx: Any) -> None:
        self.get_dependency(worker_ctx)
        data = worker_ctx.data
        ctx = Context(data[CORRELATION_ID], data[CAUSATION_ID], data[ACTOR_ID], "gateway")
        request = worker_ctx.args[0] if worker_ctx.args else None
        bind_log_context(ctx, path=getattr(request, "path", None))

    def worker_teardown(self, worker_ctx: Any) -> None:
        structlog.contextvars.clear_contextvars()
