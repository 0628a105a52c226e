"""Every exception a handler meets becomes one HTTP answer, decided here.

Service errors carry their status (``shared.errors``); the rest is mapped in
the one table below. Bad input is never a 500 and no answer carries a trace.
"""

from __future__ import annotations

from typing import Any

from kombu.exceptions import OperationalError as BrokerUnavailable
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from gateway.http import problem
from shared.errors import ServiceError, TooManyRequests
from shared.eventstore import EventStoreUnavailable
from shared.logging import get_logger

log = get_logger(__name__)

_UNAVAILABLE = (
    UnknownService,
    RpcTimeout,
    ConnectionError,
    TimeoutError,
    OperationalError,
    PoolTimeout,  # every pooled connection busy for DB_POOL_TIMEOUT_SECONDS
    EventStoreUnavailable,
    BrokerUnavailable,  # an RPC published while RabbitMQ restarts (seen in the fault test)
)
TRANSIENT_REMOTE = frozenset(
    {
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
        "EventStoreUnavailable",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "TimeoutError",
        "RecoverableConnectionError",
    }
)
"""A service's failures that mean "its database or broker was briefly away":
the request is safe to retry (with its Idempotency-Key), so they are 503s."""

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment failed",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    411: "Length required",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    503: "Service unavailable",
}


def to_response(exc: BaseException) -> Response:
    if isinstance(exc, ServiceError):
        extensions: dict[str, Any] = dict(exc.details)
        fields = extensions.pop("fields", None)
        if fields is not None:
            extensions["errors"] = fields
        response = problem(
            exc.status, exc.code, TITLES.get(exc.status, "Error"), exc.message, extensions
        )
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.details.get("retry_after", 60))
        return response
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        code = (exc.name or "error").lower().replace(" ", "_")
        return problem(exc.code, code, TITLES.get(exc.code, exc.name), exc.description)
    transient = isinstance(exc, RemoteError) and exc.exc_type in TRANSIENT_REMOTE
    if isinstance(exc, _UNAVAILABLE) or transient:
        log.warning("service unavailable", error=repr(exc))
        response = problem(503, "unavailable", TITLES[503], "a service did not answer; retry")
        response.headers["Retry-After"] = "1"
        return response
    if isinstance(exc, RemoteError):
        log.error("service failed", exc_type=exc.exc_type, error=exc.value)
    else:
        log.exception("unexpected error in gateway")
    return problem(500, "internal_error", "Internal error", "something went wrong on our side")
