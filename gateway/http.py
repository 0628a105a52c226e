"""HTTP conventions of the gateway, in one place.

* Bodies are JSON; errors are RFC 7807 ``application/problem+json`` with a
  machine-readable ``code`` and, for validation, per-field messages.
* ``X-Request-ID`` is accepted (or generated), returned, and becomes the
  correlation id of everything the request sets off.
* ``Authorization: Bearer <access token>`` identifies the caller; the user id
  travels to services as the actor of the request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from nameko.extensions import DependencyProvider
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from shared.auth import AccessTokens, Principal
from shared.config import settings
from shared.context import (
    ACTOR_ID,
    ACTOR_ROLES,
    CAUSATION_ID,
    CORRELATION_ID,
    Context,
    bind_log_context,
)
from shared.errors import Unauthorized

REQUEST_ID_HEADER = "X-Request-ID"
_LEGACY_CORRELATION_HEADER = "X-Correlation-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
PROBLEM_TYPE_BASE = "https://marketplace.example/problems/"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """An RFC 7807 problem document. Extensions never replace its own members."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    for key, value in (extensions or {}).items():
        body[key if key not in PROBLEM_MEMBERS else f"{key}_"] = value
    # non-string keys: marshmallow numbers the items of a list it rejects
    data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(data, status=status, mimetype="application/problem+json")


@dataclass
class RequestScope:
    """What the gateway knows about the request being handled."""

    worker_ctx: Any
    tokens: AccessTokens
    request_id: str
    principal: Principal | None = None

    def authenticate(self, request: Request, required: bool = True) -> Principal | None:
        """Verify the bearer token; the user becomes the actor of every RPC call."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            if required:
                raise Unauthorized("log in first: send 'Authorization: Bearer <access token>'")
            return None
        return self.act_as(self.tokens.verify(token.strip()))

    def act_as(self, principal: Principal) -> Principal:
        """``principal`` (verified by the caller) becomes the request's actor."""
        self.principal = principal
        self.worker_ctx.data[ACTOR_ID] = principal.user_id
        self.worker_ctx.data[ACTOR_ROLES] = ",".join(principal.roles)
        structlog.contextvars.bind_contextvars(actor_id=principal.user_id)
        return principal

    @property
    def client_ip(self) -> str | None:
        request = self.worker_ctx.args[0] if self.worker_ctx.args else None
        return getattr(request, "remote_addr", None)


class HttpScope(DependencyProvider):
    """Starts each request's context and injects its :class:`RequestScope`."""

    def setup(self) -> None:
        config = self.container.config
        secret = config.get("JWT_SECRET") or settings().token_secret()
        ttl = int(config.get("ACCESS_TOKEN_TTL_SECONDS") or settings().access_token_ttl)
        self.tokens = AccessTokens(secret, ttl)

    def _start(self, worker_ctx: Any) -> None:
        data = worker_ctx.data
        if data.get(CORRELATION_ID):
            return
        request = worker_ctx.args[0] if worker_ctx.args else None
        headers = request.headers if isinstance(request, Request) else Headers()
        incoming = headers.get(REQUEST_ID_HEADER) or headers.get(_LEGACY_CORRELATION_HEADER)
        valid = incoming is not None and _VALID_REQUEST_ID.match(incoming)
        data[CORRELATION_ID] = incoming if valid else str(uuid.uuid4())
        data[CAUSATION_ID] = str(uuid.uuid4())
        data[ACTOR_ID] = "anonymous"

    def get_dependency(self, worker_ctx: Any) -> RequestScope:
        self._start(worker_ctx)
        return RequestScope(worker_ctx, self.tokens, worker_ctx.data[CORRELATION_ID])

    def worker_setup(self, worker_ctx: Any) -> None:
        self._start(worker_ctx)
        data = worker_ctx.data
        request = worker_ctx.args[0] if worker_ctx.args else None
        ctx = Context(data[CORRELATION_ID], data[CAUSATION_ID], data[ACTOR_ID], "gateway")
        bind_log_context(
            ctx, method=getattr(request, "method", None), path=getattr(request, "path", None)
        )

    def worker_teardown(self, worker_ctx: Any) -> None:
        structlog.contextvars.clear_contextvars()
