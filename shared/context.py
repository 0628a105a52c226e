"""Who is acting, and within which request: carried through RPC, events and logs.

The gateway starts a request's context (correlation id from ``X-Correlation-ID``
or new, the authenticated actor). Nameko carries context data in message
headers (``nameko.<key>``) on every RPC call; the relay sets the same headers
on every event it publishes, with the event's id as the causation id. In a
service, :class:`RequestContext` reads them for each worker, binds them to the
log context, and turns them into the metadata of the events it records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from nameko.extensions import DependencyProvider

from shared.eventstore import EventMetadata

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"
ACTOR_ID = "actor_id"
ACTOR_ROLES = "actor_roles"
REQUEST_KEY = "request_key"
"""The client's Idempotency-Key (scoped to the client): a retried request's
commands get the same event ids, so what the first attempt recorded is
recognised rather than recorded again (see ``shared.eventlog``)."""
"""Comma-separated roles of the authenticated actor, as the gateway verified them."""


def roles_of(joined: object) -> tuple[str, ...]:
    """Roles as they travel (comma-separated) back to a tuple."""
    return tuple(r for r in str(joined or "").split(",") if r)


@dataclass(frozen=True)
class Context:
    correlation_id: str
    causation_id: str
    actor_id: str
    service: str
    roles: tuple[str, ...] = ()
    request_key: str | None = None

    def metadata(self, **extra: Any) -> EventMetadata:
        return EventMetadata(
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            actor_id=self.actor_id,
            source=self.service,
            extra=extra,
        )


def worker_context(worker_ctx: Any, service: str) -> Context:
    """The context of one worker, derived once from the message that started it.

    Ids the caller did not send are filled into the worker's context data, so
    that every dependency sees the same ones and every call the worker makes
    carries them on. Nameko injects dependencies in no fixed order, hence each
    of them calls this rather than relying on another having run first.
    """
    data = worker_ctx.data
    if not data.get(CORRELATION_ID):
        data[CORRELATION_ID] = str(uuid.uuid4())
    if not data.get(CAUSATION_ID):
        data[CAUSATION_ID] = data[CORRELATION_ID]
    if not data.get(ACTOR_ID):
        data[ACTOR_ID] = f"system:{service}"
    return Context(
        correlation_id=str(data[CORRELATION_ID]),
        causation_id=str(data[CAUSATION_ID]),
        actor_id=str(data[ACTOR_ID]),
        service=service,
        roles=roles_of(data.get(ACTOR_ROLES)),
        request_key=data.get(REQUEST_KEY) or None,
    )


def bind_log_context(ctx: Context, **extra: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
        actor_id=ctx.actor_id,
        **extra,
    )


class RequestContext(DependencyProvider):  # type: ignore[misc]  # nameko is untyped: Any
    """Injects the worker's :class:`Context` and binds it to every log line."""

    def get_dependency(self, worker_ctx: Any) -> Context:
        return worker_context(worker_ctx, self.container.service_name)

    def worker_setup(self, worker_ctx: Any) -> None:
        ctx = worker_context(worker_ctx, self.container.service_name)
        bind_log_context(ctx, entrypoint=worker_ctx.entrypoint.method_name)

    def worker_teardown(self, worker_ctx: Any) -> None:
        structlog.contextvars.clear_contextvars()
