"""``@endpoint``: declares an HTTP operation of the API and applies every convention.

A route is declared once, with its schemas; from that one declaration the
gateway bounds the request body, validates the request, authenticates, honours
``Idempotency-Key``, serialises the answer, maps errors to problem documents,
records metrics, adds CORS headers, and writes the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from marshmallow import Schema
from werkzeug.wrappers import Request, Response

from gateway.access import permit
from gateway.errors import to_response
from gateway.http import REQUEST_ID_HEADER, RequestScope, json_response
from gateway.idempotency import IdempotencyStore, StoredAnswer, request_fingerprint
from gateway.metrics import observe
from gateway.response_cache import (
    LOOKUPS,
    CachedAnswer,
    CacheKey,
    ResponseCache,
    RetiredBy,
    etag_matches,
)
from gateway.server import MAX_BODY_BYTES, http
from gateway.sessions import refuse_ended
from shared.config import settings
from shared.context import REQUEST_KEY
from shared.errors import InvalidInput, ServiceError
from shared.validation import load

API_PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


class BadJson(ServiceError):
    status = 400
    code = "invalid_json"


class KeyRequired(ServiceError):
    status = 428
    code = "idempotency_key_required"


class BodyTooLarge(ServiceError):
    status = 413
    code = "request_entity_too_large"  # what werkzeug's own 413 is mapped to (gateway.errors)


class LengthRequired(ServiceError):
    status = 411
    code = "length_required"


@dataclass
class Route:
    method: str
    path: str
    summary: str
    tags: tuple[str, ...]
    auth: str  # "required", "optional" or "none"
    body: type[Schema] | None
    query: type[Schema] | None
    response: type[Schema] | None
    status: int
    idempotent: bool
    multipart: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    key_required: bool = False
    """Moves money: a request without ``Idempotency-Key`` is refused (428)."""
    alternatives: tuple[str, ...] = ()
    """Media types the success answer may also take (for example text/csv)."""
    cached_by: tuple[str, ...] = ()
    """The views a cached read is made of (its ``reads``), and nothing else: its
    answers are kept while they stand still."""
    location: str | None = None
    """Where a 201's ``Location`` points: a path under /api/v1 whose ``{names}``
    are filled from the path's parameters and the answer's fields."""
    max_body: Callable[[Any], int] | None = None
    """The largest body this route takes, from the service (uploads: the blob
    store's limit); ``MAX_BODY_BYTES`` otherwise."""
    description: str = ""
    """The handler's docstring: what the OpenAPI document says beyond the summary."""
    handler: Callable[..., Any] | None = None
    role: str | None = None
    """The role the caller's token must hold."""
    verified: bool = False
    """Only a caller whose address is verified (the token's claim)."""
    reads: tuple[str, ...] = ()
    """The gateway's views the handler reads."""
    retired_by: RetiredBy | None = None
    """A cached read over one view: whether events that view applied change an
    answer (see ``gateway.response_cache``); None: every event does."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Built once: instantiating a schema (with its nested ones) per request
        # cost more CPU than the database query behind a read.
        self.body_schema = self.body() if self.body else None
        self.query_schema = self.query() if self.query else None
        self.response_schema = self.response() if self.response else None


ROUTES: list[Route] = []


def cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    allowed = settings().cors_origins
    if not origin or not allowed or (origin not in allowed and "*" not in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Vary": "Origin",
        "Access-Control-Expose-Headers": "X-Request-ID, Retry-After, Location",
    }


def finish(scope: RequestScope, request: Request, response: Response) -> Response:
    """What every answer carries. An answer to anything but a read is never
    kept by a browser or a proxy (tokens among them); a read says for itself
    how long it may be kept, and is private to its caller unless it is public."""
    headers = response.headers
    headers[REQUEST_ID_HEADER] = scope.request_id
    headers.update(cors_headers(request))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.scheme == "https":  # TLS ends at the proxy in front (TRUSTED_PROXY_HOPS)
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.method not in ("GET", "HEAD"):
        headers["Cache-Control"] = "no-store"
    elif "Cache-Control" not in headers:
        headers["Cache-Control"] = "private, no-cache"
    return response


def _json_body(request: Request) -> Any:
    if not request.content_length:
        # No body at all: the schema's defaults apply. (The Content-Type says
        # nothing here: eventlet's server fills in text/plain when absent.)
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.get_data(cache=True)  # at most the route's limit: see _bound_body
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON: {exc}") from None


def _no_nul(value: Any, where: str = "") -> Any:
    """NUL characters are refused in every text (PostgreSQL cannot store them,
    and no legitimate input needs one)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(
                "text may not contain NUL characters", {"fields": {where or "_schema": ["NUL"]}}
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, where)
            _no_nul(item, str(key))
    elif isinstance(value, list):
        for item in value:
            _no_nul(item, where)
    return value


def endpoint(
    method: str,
    path: str,
    *,
    summary: str,
    tags: tuple[str, ...] = (),
    auth: str = "required",
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    idempotent: bool | None = None,
    multipart: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
    key_required: bool = False,
    alternatives: tuple[str, ...] = (),
    location: str | None = None,
    max_body: Callable[[Any], int] | None = None,
    role: str | None = None,
    verified: bool = False,
    reads: tuple[str, ...] = (),
    cached: bool = False,
    retired_by: RetiredBy | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """``path`` uses werkzeug's syntax (``/users/<user_id>``), under /api/v1.

    Who may call it, in one place: ``auth`` (logged in, optionally, or not),
    ``role`` (the caller's token must hold it) and ``verified`` (the caller's
    address is verified), all checked before anything else is read; what
    belongs to someone in particular (a contract's parties) the handler checks
    against the views it names in ``reads`` (the gateway's ProjectionWorker
    attributes; gateway/tests/test_routes.py holds every handler to them).
    ``cached``: the answer is made of ``reads`` alone (with the caller and the
    URL: no clock, no RPC), so it is kept while they stand still, or, with
    ``retired_by``, while no event that view applies changes it. A route that
    creates (201) names the ``location`` of what it created."""
    if (status == 201) != (location is not None):
        raise ValueError(f"{path}: a 201 names its Location, and only a 201 does")
    if cached and (method != "GET" or not reads):
        raise ValueError(f"{path}: only reads are cached, by the views they read")
    if retired_by is not None and not (cached and len(reads) == 1):
        raise ValueError(f"{path}: retired_by is for a cached read of one view")
    route = Route(
        method,
        API_PREFIX + path,
        summary,
        tags,
        auth,
        body,
        query,
        response,
        status,
        method == "POST" if idempotent is None else idempotent,
        multipart,
        errors,
        key_required,
        alternatives,
        reads if cached else (),
        API_PREFIX + location if location else None,
        max_body,
        role=role,
        verified=verified,
        reads=reads,
        retired_by=retired_by,
    )
    ROUTES.append(route)

    def decorate(fn: Callable[..., Any]) -> Any:
        route.description = inspect.getdoc(fn) or ""
        route.handler = fn

        @functools.wraps(fn)
        def handler(self: Any, request: Request, **params: Any) -> Response:
            started = time.perf_counter()
            scope: RequestScope = self.scope
            try:
                _bound_body(request, route.max_body(self) if route.max_body else MAX_BODY_BYTES)
                answer = _handle(self, scope, route, fn, request, params)
            except Exception as exc:
                answer = to_response(exc)
            observe(route.method, route.path, answer.status_code, time.perf_counter() - started)
            return finish(scope, request, answer)

        return http(method, route.path)(handler)

    return decorate


def _bound_body(request: Request, limit: int) -> None:
    """Refuse a body larger than the route takes before anything reads it: not
    authentication, not the ``Idempotency-Key``'s fingerprint (which reads the
    whole body), not a schema. What is read later is bounded by the same limit.

    A chunked body is refused: its size is known only by reading it, and
    eventlet's server does not mark such input as terminated, so werkzeug
    would read it as empty and the request would run without its body."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise LengthRequired("send the body with a Content-Length header, not chunked")
    if (request.content_length or 0) > limit:
        raise BodyTooLarge("the body is larger than this operation takes", {"max_bytes": limit})
    request.max_content_length = limit


def _handle(
    service: Any,
    scope: RequestScope,
    route: Route,
    fn: Callable[..., Any],
    request: Request,
    params: dict[str, Any],
) -> Response:
    if route.auth != "none":
        principal = scope.authenticate(request, required=route.auth == "required")
        if principal is not None:
            refuse_ended(service, principal)  # logged out: refused though unexpired
            permit(principal, route.role, route.verified)
    if route.cached_by:
        return _read_through_cache(service, scope, route, fn, request, params)
    kwargs = _inputs(route, request)
    key = request.headers.get(IDEMPOTENCY_HEADER) if route.idempotent else None
    if route.key_required and not key:
        raise KeyRequired(
            f"this request moves money: send an {IDEMPOTENCY_HEADER} header (a new random "
            "value per operation, the same one when you retry it)"
        )
    if key is None:
        return _call(route, fn, service, request, params, kwargs)
    store: IdempotencyStore = service.idempotency
    # Keys are the client's own: per user, or per address before login.
    owner = scope.principal.user_id if scope.principal else f"anonymous:{scope.client_ip}"
    print_ = request_fingerprint(request)
    stored = store.begin(owner, key, print_)
    # The services derive event and entity ids from it: a retry recognises
    # what an interrupted first attempt already recorded.
    scope.worker_ctx.data[REQUEST_KEY] = f"{owner}:{key}"
    if stored is not None:
        replay = Response(stored.body, status=stored.status, mimetype=stored.content_type)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        answer = _call(route, fn, service, request, params, kwargs)
    except ServiceError as exc:
        answer = to_response(exc)
    except BaseException:
        store.abandon(owner, key)
        raise
    if answer.status_code >= 500 or answer.is_streamed:
        store.abandon(owner, key)
    else:
        store.complete(
            owner, key, StoredAnswer(answer.status_code, answer.mimetype or "", answer.get_data())
        )
    return answer


def _inputs(route: Route, request: Request) -> dict[str, Any]:
    """The validated query and body, as the route's schemas load them."""
    kwargs: dict[str, Any] = {}
    if route.query_schema is not None:
        kwargs["query"] = load(route.query_schema, _no_nul(request.args.to_dict()))
    if route.body_schema is not None:
        kwargs["body"] = load(route.body_schema, _no_nul(_json_body(request)))
    return kwargs


def _read_through_cache(
    service: Any,
    scope: RequestScope,
    route: Route,
    fn: Callable[..., Any],
    request: Request,
    params: dict[str, Any],
) -> Response:
    """Answer from the response cache while the route's views stand still.

    The positions are read before the query: the answer then holds at least
    what they say, and any later event moves a position and so the key. Only
    200s are kept, so a URL found here was valid: it is not validated again.

    A route that tells which events retire its answers (``retired_by``) keys
    them without the position: a kept answer read at position p stands at q
    if none of the events its view applied in (p, q] retires it."""
    cache: ResponseCache = service.responses
    principal = scope.principal
    viewer = (principal.user_id, *principal.roles) if principal else ()
    made_at: int | None = None
    if route.retired_by is None:
        positions = [getattr(service, view).live_position for view in route.cached_by]
        key = cache.key(route.path, request.full_path, viewer, positions)
        kept = cache.get(key) if key is not None else None
    else:
        view = getattr(service, route.cached_by[0])
        made_at = view.live_position
        # (the position is the answer's, not the key's)
        key = cache.key(route.path, request.full_path, viewer, ()) if made_at is not None else None
        kept = _still_standing(route, view, cache, key, made_at) if key is not None else None
    if key is None:
        LOOKUPS.labels(route.path, "bypass").inc()
        return _call(route, fn, service, request, params, _inputs(route, request))
    # An answer made at the same position under the same key is the same answer.
    etag = cache.etag(key, kept.made_at if kept is not None else made_at)
    if etag_matches(request.headers.get("If-None-Match"), etag):
        LOOKUPS.labels(route.path, "not_modified").inc()
        answer = Response(status=304)
    elif kept is not None:
        LOOKUPS.labels(route.path, "hit").inc()
        answer = Response(kept.body, status=kept.status, mimetype=kept.mimetype)
    else:
        LOOKUPS.labels(route.path, "miss").inc()
        inputs = _inputs(route, request)
        answer = _call(route, fn, service, request, params, inputs)
        if answer.status_code != 200 or answer.is_streamed:
            return answer
        body, mimetype = answer.get_data(), answer.mimetype or ""
        if made_at is None:
            cache.put(key, CachedAnswer(200, body, mimetype))
        else:
            cache.put(key, CachedAnswer(200, body, mimetype, made_at, made_at, params | inputs))
    answer.headers["ETag"] = etag
    answer.headers["Cache-Control"] = "private, no-cache"
    return answer


def _still_standing(
    route: Route, view: Any, cache: ResponseCache, key: CacheKey, position: int
) -> CachedAnswer | None:
    """The kept answer, if no event applied since it was last checked (up to
    ``position``) retires it; it is then known to stand up to ``position``."""
    kept = cache.get(key)
    if kept is None:
        return None
    assert kept.valid_at is not None and kept.inputs is not None and route.retired_by
    if kept.valid_at == position:
        return kept
    events = view.applied_since(kept.valid_at) if kept.valid_at < position else None
    if events is not None:
        events = [e for e in events if e.position <= position]
        retired = False
        if events:  # (none up to here: nothing to ask the view)
            with view.connect() as conn:
                retired = route.retired_by(conn, kept.inputs, events)
        if not retired:
            LOOKUPS.labels(route.path, "retained").inc()
            kept = dataclasses.replace(kept, valid_at=position)
            cache.put(key, kept)
            return kept
    cache.drop(key)
    return None


def _call(
    route: Route,
    fn: Callable[..., Any],
    service: Any,
    request: Request,
    params: dict[str, Any],
    kwargs: dict[str, Any],
) -> Response:
    result = fn(service, request, **params, **kwargs)
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    body = route.response_schema.dump(result) if route.response_schema is not None else result
    response = json_response(body, status=route.status)
    if route.location is not None:
        response.headers["Location"] = route.location.format_map({**params, **body})
    return response


def openapi_path(path: str) -> str:
    """werkzeug's ``/users/<user_id>`` as OpenAPI's ``/users/{user_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", path)
