"""The one router: every route is served once, by its context's module, and
forwards only the input its schemas validated."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR, DependencyProvider

from gateway.endpoint import API_PREFIX, ROUTES
from gateway.routes import CONTEXTS
from gateway.routes.base import RoutesBase
from gateway.routes.health import SERVICES
from gateway.service import GatewayService
from gateway.signed_rpc import SignedRpcProxy
from shared.money import MoneySchema
from shared.projection import ProjectionWorker

MODULE_OF_TAG = {
    "accounts": "identity",
    "personal data": "privacy",
    "profiles": "identity",
    "projects": "projects",
    "alerts": "projects",
    "proposals": "bidding",
    "contracts": "contracts",
    "disputes": "contracts",
    "escrow": "escrow",
    "messages": "messaging",
    "notifications": "messaging",
    "reputation": "reputation",
    "files": "files",
}
"""Each OpenAPI tag belongs to one bounded context, whose module serves it."""


def entrypoints() -> list[tuple[str, str, str, str]]:
    """(method, url, handler name, handler module) of every HTTP entrypoint."""
    found = []
    for name, member in inspect.getmembers(GatewayService):
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            module = member.__module__.rpartition(".")[2]
            found.append((entrypoint.method, entrypoint.url, name, module))
    return found


def test_every_api_route_is_declared_once_and_served_by_one_handler():
    declared = [(route.method, route.path) for route in ROUTES]
    assert len(declared) == len(set(declared)) >= 70
    served = [(method, url) for method, url, _, _ in entrypoints()]
    assert len(served) == len(set(served))
    api = {pair for pair in served if pair[1].startswith(API_PREFIX + "/")}
    catch_all = {
        ("GET", f"{API_PREFIX}/openapi.json"),
        ("OPTIONS", f"{API_PREFIX}/<path:rest>"),
        ("GET,POST,PUT,PATCH,DELETE", f"{API_PREFIX}/<path:rest>"),
    }
    assert api - catch_all == set(declared)


def test_no_context_hides_another_contexts_handler():
    """Two contexts defining one name would leave GatewayService one handler."""
    owners: dict[str, str] = {}
    for context in CONTEXTS:
        for name in vars(context):
            if not name.startswith("__"):
                assert name not in owners, f"{name} in {owners.get(name)} and {context.__name__}"
                owners[name] = context.__name__
    assert not set(owners) & set(vars(RoutesBase)) - {"__annotations__"}


def test_every_route_is_in_its_contexts_module():
    tags = {(route.method, route.path): route.tags for route in ROUTES}
    for method, url, name, module in entrypoints():
        route_tags = tags.get((method, url))
        if route_tags is None:  # a plain @http route: health, metrics, docs
            assert module == "health", f"{name} ({method} {url}) is in {module}"
            continue
        assert route_tags, f"{method} {url} has no tag"
        expected = {MODULE_OF_TAG[tag] for tag in route_tags}
        assert expected == {module}, f"{name} ({method} {url}) is in {module}"


def test_every_dependency_a_route_may_use_is_declared_by_the_service():
    for name in RoutesBase.__annotations__:
        assert isinstance(getattr(GatewayService, name, None), DependencyProvider), name
    for name in SERVICES:
        assert isinstance(getattr(GatewayService, name), SignedRpcProxy), name


def test_no_handler_reads_the_raw_body():
    """Handlers take the ``body`` and ``query`` their endpoint validated."""
    for path in sorted(Path(__file__).parents[1].joinpath("routes").glob("*.py")):
        source = path.read_text()
        for raw in ("get_json(", "get_data(", "request.json", "request.data", "request.args"):
            assert raw not in source, f"{path.name} reads {raw}"


ROUND_TRIP = (fields.String, fields.Integer, fields.Boolean, fields.UUID, fields.Date)
"""Field types whose value, in JSON form (``json_ready``), loads back to itself."""
CHECKS_ONLY: dict[type[Schema], dict[str, Any]] = {MoneySchema: {"amount": 1, "currency": "EUR"}}
"""Schemas whose load hooks only validate, and return what they were given."""


def _field_types_round_trip(schema: Schema, where: str) -> None:
    # (_hooks is a defaultdict: marshmallow's own lookups leave empty entries)
    hooks = {tag for tag, found in schema._hooks.items() if "load" in tag and found}
    sample = CHECKS_ONLY.get(type(schema))
    if sample is not None and schema.load(sample) == sample:
        hooks = set()
    assert not hooks, f"{where} transforms its input ({hooks})"
    for name, field in schema.fields.items():
        _field_round_trips(field, f"{where}.{name}")


def _field_round_trips(field: Any, where: str) -> None:
    assert field.data_key is None, f"{where} is read from another key"
    if isinstance(field, fields.Nested):
        _field_types_round_trip(field.schema, where)
    elif isinstance(field, fields.List):
        _field_round_trips(field.inner, where + "[]")
    elif isinstance(field, fields.Dict):
        _field_round_trips(field.key_field, where + "{key}")
        _field_round_trips(field.value_field, where + "{value}")
    else:
        assert isinstance(field, ROUND_TRIP), f"{where} is a {type(field).__name__}"


def test_every_body_a_handler_forwards_loads_again_as_the_service_loads_it():
    """Handlers send ``json_ready(body)`` on, and the service loads it with the
    same schema: that must give what the gateway loaded from the request."""
    for route in ROUTES:
        if route.body_schema is not None:
            _field_types_round_trip(route.body_schema, route.body.__name__)


def test_every_created_resource_has_a_location_that_is_a_readable_route():
    """Its names come from the path or the answer, and it is a route one can GET."""
    readable = {re.sub(r"<[^>]+>", "{}", r.path) for r in ROUTES if r.method == "GET"}
    created = [r for r in ROUTES if r.status == 201]
    assert created
    for route in created:
        assert route.location is not None, route.path
        names = set(re.findall(r"{(\w+)}", route.location))
        answer = set(route.response_schema.fields) if route.response_schema else set()
        assert names <= set(re.findall(r"<(?:\w+:)?(\w+)>", route.path)) | answer, route.path
        assert re.sub(r"{\w+}", "{}", route.location) in readable, route.location


VIEWS = {name for name, v in vars(GatewayService).items() if isinstance(v, ProjectionWorker)}


def _views_named(method_name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The views a handler names (``self.<view>``), itself or through the
    methods of the gateway it calls (``self._helper(...)``)."""
    function = inspect.unwrap(getattr(GatewayService, method_name))
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    views: set[str] = set()
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            continue
        if node.attr in VIEWS:
            views.add(node.attr)
        elif callable(getattr(GatewayService, node.attr, None)) and node.attr not in seen:
            views |= _views_named(node.attr, seen | {method_name})
    return views


def test_every_route_declares_the_views_its_handler_reads():
    """``reads`` is where a route says what it reads: a handler naming a view
    it does not declare fails here (the export reads every view's tables
    through one connection, so it declares more than it names)."""
    undeclared = {}
    for route in ROUTES:
        assert route.handler is not None
        assert set(route.reads) <= VIEWS, f"{route.path} reads no such view"
        named = _views_named(route.handler.__name__)
        if not named <= set(route.reads):
            undeclared[f"{route.method} {route.path}"] = sorted(named - set(route.reads))
    assert undeclared == {}
    assert sum(1 for r in ROUTES if r.reads) >= 40


def test_who_may_call_a_route_is_declared_not_checked_in_its_handler():
    for path in sorted(Path(__file__).parents[1].joinpath("routes").glob("*.py")):
        source = path.read_text()
        for check in ("principal.roles", "email_verified", "withheld_roles"):
            assert check not in source, f"{path.name} checks {check} itself"
    assert {r.role for r in ROUTES} == {None, "buyer", "seller", "admin"}
