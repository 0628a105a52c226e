"""Published events are a service's API: compatible forever, free of secrets,
and the only way services learn of each other.

``published_events.json`` beside this file is the API as promised so far. A
change that keeps it compatible (a new published type, a new optional field)
fails here only until the file is regenerated, so that every change of the
API is seen in review::

    .venv/bin/python -m tests.repository.test_published_events --update

A change that breaks it (a field removed, retyped or made required, a type
no longer published) fails whatever the file says: it needs a new event type
or an upcaster that keeps the old fields.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, fields

from shared.schemas import EventRegistry, SchemaError, load_all_event_schemas, registry

ROOT = Path(__file__).resolve().parents[2]
PROMISED = Path(__file__).with_name("published_events.json")
SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")


def field_spec(field: fields.Field) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type(field).__name__,
        "required": bool(field.required),
        "allow_none": bool(field.allow_none),
    }
    if isinstance(field, fields.Nested) and isinstance(field.nested, type):
        spec["fields"] = schema_spec(field.nested())
    elif isinstance(field, fields.Nested) and isinstance(field.nested, Schema):
        spec["fields"] = schema_spec(field.nested)
    elif isinstance(field, fields.List):
        spec["items"] = field_spec(field.inner)
    return spec


def schema_spec(schema: Schema) -> dict[str, Any]:
    return {name: field_spec(f) for name, f in sorted(schema.fields.items())}


def published_api(schemas: EventRegistry = registry) -> dict[str, Any]:
    load_all_event_schemas()
    api = {}
    for event_type, (version, schema) in sorted(schemas.published_schemas().items()):
        if not schemas.declared_in(event_type).startswith("services."):
            continue  # a test's own events
        spec: dict[str, Any] = {"version": version, "fields": schema_spec(schema)}
        personal = schemas.personal_fields(event_type, version)
        published_personal = {f: o for f, o in sorted(personal.items()) if f in schema.fields}
        if published_personal:
            # whose they are: these read as "[erased]" once that person is erased
            spec["personal"] = published_personal
        api[event_type] = spec
    return api


def breaks(before: dict[str, Any], after: dict[str, Any], where: str) -> list[str]:
    """What a consumer written against ``before`` would no longer find in ``after``."""
    found = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            found.append(f"{where}.{name} is no longer published")
            continue
        if new["type"] != old["type"]:
            found.append(f"{where}.{name} changed type {old['type']} -> {new['type']}")
        if new["allow_none"] and not old["allow_none"]:
            found.append(f"{where}.{name} may now be null")
        if "fields" in old:
            found += breaks(old["fields"], new.get("fields", {}), f"{where}.{name}")
        if "items" in old:
            found += breaks({"item": old["items"]}, {"item": new.get("items")}, f"{where}.{name}")
    for name, new in after.items():
        if new["required"] and (name not in before or not before[name]["required"]):
            found.append(f"{where}.{name} is now required (old events do not have it)")
    return found


def test_published_schemas_stay_compatible_with_what_they_promised():
    promised = json.loads(PROMISED.read_text())
    current = published_api()
    broken = []
    for event_type, old in promised.items():
        new = current.get(event_type)
        if new is None:
            broken.append(f"{event_type} is no longer published")
            continue
        if new["version"] < old["version"]:
            broken.append(f"{event_type} went back from v{old['version']} to v{new['version']}")
        broken += breaks(old["fields"], new["fields"], event_type)
    assert not broken, "published events changed incompatibly:\n" + "\n".join(broken)
    assert current == promised, (
        "the published API changed compatibly: review it, then regenerate "
        "tests/repository/published_events.json (see this module's docstring)"
    )


def test_the_compatibility_check_catches_what_breaks_a_consumer():
    before = {"amount": {"type": "Integer", "required": True, "allow_none": False}}
    assert breaks(before, {}, "E") == ["E.amount is no longer published"]
    retyped = {"amount": {"type": "String", "required": True, "allow_none": False}}
    assert breaks(before, retyped, "E") == ["E.amount changed type Integer -> String"]
    added = {**before, "note": {"type": "String", "required": True, "allow_none": False}}
    assert breaks(before, added, "E") == ["E.note is now required (old events do not have it)"]
    optional = {**before, "note": {"type": "String", "required": False, "allow_none": True}}
    assert breaks(before, optional, "E") == []


def test_no_published_type_publishes_a_sensitive_field():
    load_all_event_schemas()
    for event_type in registry.published_schemas():
        version = registry.current_version(event_type)
        sensitive = set(registry._version(event_type, version).sensitive)
        assert not sensitive & set(registry.published_fields(event_type) or ())
    reg = EventRegistry()

    class Secret(Schema):
        token_hash = fields.String()

    with pytest.raises(SchemaError, match="sensitive"):
        reg.register("Secret", 1, Secret(), sensitive=("token_hash",), published=("token_hash",))
    reg.register("Secret", 1, Secret(), sensitive=("token_hash",), published="all")
    assert reg.published_fields("Secret") == ()


def _string_literals(path: Path) -> list[tuple[int, str]]:
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for token in tokens:
        if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            found.append((token.start[0], token.string))
    return found


def test_no_service_names_another_services_stream_category():
    """The only stream names a service's code may spell are its own."""
    owned = {
        name: importlib.import_module(f"services.{name}.events").STREAM_CATEGORIES
        for name in SERVICES
    }
    offences = []
    for name in SERVICES:
        foreign = {c for other, cats in owned.items() if other != name for c in cats}
        for path in sorted((ROOT / "services" / name).rglob("*.py")):
            if "tests" in path.parts:
                continue
            for line, literal in _string_literals(path):
                body = literal.lstrip("rbfuRBFU").strip("\"'")
                for category in foreign:
                    if body.startswith(f"{category}-"):
                        offences.append(f"{path.relative_to(ROOT)}:{line}: {literal}")
    assert not offences, "a service names another service's streams:\n" + "\n".join(offences)


def test_a_services_own_projections_read_only_its_own_streams():
    """The projections a service runs itself (the gateway's are published views)."""
    from shared.projection import ProjectionWorker

    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.service")
        own = set(importlib.import_module(f"services.{name}.events").STREAM_CATEGORIES)
        for value in vars(module).values():
            for attr in vars(value).values() if isinstance(value, type) else ():
                if isinstance(attr, ProjectionWorker):
                    categories = attr.projection.categories
                    assert categories is not None, f"{name} runs {attr.projection.name} on all"
                    assert set(categories) <= own, (name, attr.projection.name, categories)


PUBLISHED_API = {
    "api",  # request and response schemas
    "events",  # event schemas: what is published, and how its text reads
    "views",  # the read models the gateway keeps, from published events only
    "contract",  # contracts: how a contract folds from its published events
    "hourly",  # contracts: how an hourly contract's weeks and invoices fold and bill
    "profiles",  # identity: how a profile reads
    "ledger",  # escrow: the double-entry rules its published movements follow
    "notifications",  # messaging: which published event tells whom what
    "formula",  # reputation: the published, versioned formula
}


def test_the_gateway_imports_nothing_of_a_service_but_its_published_api():
    """Imported for real, in a fresh interpreter: every module of services/ that
    the gateway pulls in, directly or not, is part of a published API."""
    script = (
        "import sys, gateway.service; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('services.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    modules = [m for m in out if m.count(".") == 2]
    assert modules, out
    private = [m for m in modules if m.rsplit(".", 1)[1] not in PUBLISHED_API]
    assert not private, f"the gateway depends on services' internals: {private}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    PROMISED.write_text(json.dumps(published_api(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PROMISED.relative_to(ROOT)}")
