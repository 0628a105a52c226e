"""Event schemas: one registry of marshmallow schemas per event type and version.

A service declares its events in its own ``events.py``::

    @registry.event("ProjectPosted", version=2, upcast=lambda v1: {**v1, "currency": "USD"})
    class ProjectPostedV2(Schema): ...

``upcast`` turns the previous version's data into this version's. Appends are
encoded with the newest version; reads upcast whatever version is stored.
Services list their ``events`` module under the ``marketplace.event_schemas``
entry point group, so that tools and consumers can decode any event without
importing another service's code (``load_all_event_schemas``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError

from shared.eventstore.contract import EventMetadata, NewEvent, RecordedEvent

ENTRY_POINT_GROUP = "marketplace.event_schemas"

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
S = TypeVar("S", bound=type[Schema])


class SchemaError(Exception):
    """Base class of registry errors."""


class UnknownEventType(SchemaError):
    def __init__(self, event_type: str, version: int | None = None) -> None:
        self.event_type = event_type
        self.version = version
        at = "" if version is None else f" version {version}"
        super().__init__(f"unknown event type {event_type!r}{at}: no schema is registered")


class InvalidEventPayload(SchemaError):
    def __init__(self, event_type: str, version: int, errors: Mapping[str, Any]) -> None:
        self.event_type = event_type
        self.version = version
        self.errors = dict(errors)
        super().__init__(f"invalid {event_type} v{version} payload: {self.errors}")


@dataclass(frozen=True)
class _Version:
    schema: Schema
    upcast: Upcaster | None
    sensitive: tuple[str, ...] = ()


REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A recorded event whose data is validated and upcast to the current version."""

    recorded: RecordedEvent
    data: dict[str, Any]
    version: int

    @property
    def type(self) -> str:
        return self.recorded.type


class EventRegistry:
    def __init__(self) -> None:
        self._types: dict[str, dict[int, _Version]] = {}

    def event(
        self,
        event_type: str,
        version: int = 1,
        upcast: Upcaster | None = None,
        sensitive: tuple[str, ...] = (),
    ) -> Any:
        """Class decorator registering a marshmallow schema for one version.

        ``sensitive`` names fields (secrets, credentials) that leave the
        system only redacted: exports, replays and analysts never see them.
        """

        def register(schema_cls: S) -> S:
            self.register(event_type, version, schema_cls(), upcast, sensitive)
            return schema_cls

        return register

    def register(
        self,
        event_type: str,
        version: int,
        schema: Schema,
        upcast: Upcaster | None = None,
        sensitive: tuple[str, ...] = (),
    ) -> None:
        versions = self._types.setdefault(event_type, {})
        existing = versions.get(version)
        if existing is not None:
            if type(existing.schema) is type(schema):
                return  # the same module imported twice
            raise SchemaError(f"{event_type} v{version} is registered twice")
        if version > 1 and upcast is None:
            raise SchemaError(f"{event_type} v{version} needs an upcaster from v{version - 1}")
        versions[version] = _Version(schema, upcast, tuple(sensitive))

    def current_version(self, event_type: str) -> int:
        versions = self._types.get(event_type)
        if not versions:
            raise UnknownEventType(event_type)
        return max(versions)

    def knows(self, event_type: str) -> bool:
        return event_type in self._types

    @property
    def event_types(self) -> list[str]:
        return sorted(self._types)

    def _version(self, event_type: str, version: int) -> _Version:
        try:
            return self._types[event_type][version]
        except KeyError:
            raise UnknownEventType(event_type, version) from None

    def encode(self, event_type: str, data: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Validate ``data`` against the current schema; return (version, JSON-ready data)."""
        version = self.current_version(event_type)
        schema = self._version(event_type, version).schema
        try:
            dumped = schema.dump(data)
        except (TypeError, ValueError, AttributeError) as exc:
            # a value of the wrong Python type (a str where a datetime belongs)
            raise InvalidEventPayload(event_type, version, {"_schema": [str(exc)]}) from exc
        errors = schema.validate(dumped)
        if errors:
            raise InvalidEventPayload(event_type, version, errors)
        return version, dumped

    def new_event(
        self,
        event_type: str,
        data: Mapping[str, Any],
        metadata: EventMetadata,
        event_id: uuid.UUID | None = None,
    ) -> NewEvent:
        version, encoded = self.encode(event_type, data)
        event = NewEvent(type=event_type, data=encoded, metadata=metadata, schema_version=version)
        return event if event_id is None else replace(event, event_id=event_id)

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> tuple[int, dict]:
        """Raw stored data of ``version`` brought to the current version."""
        current = self.current_version(event_type)
        if version > current:
            raise UnknownEventType(event_type, version)
        self._version(event_type, version)
        while version < current:
            version += 1
            step = self._version(event_type, version).upcast
            assert step is not None  # enforced at registration
            data = step(data)
        return version, data

    def decode_data(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Upcast and load with the current schema (Python values, e.g. datetimes)."""
        current, upcast = self.upcast(event_type, version, data)
        schema = self._version(event_type, current).schema
        try:
            return schema.load(upcast)
        except ValidationError as exc:
            raise InvalidEventPayload(event_type, current, exc.normalized_messages()) from exc

    def decode(self, event: RecordedEvent) -> DecodedEvent:
        data = self.decode_data(event.type, event.schema_version, event.data)
        return DecodedEvent(event, data, self.current_version(event.type))

    def redact(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        sensitive = self._version(event_type, version).sensitive
        if not sensitive:
            return data
        return {k: (REDACTED if k in sensitive else v) for k, v in data.items()}

    def envelope(self, event: RecordedEvent) -> dict[str, Any]:
        """The export form: data upcast (JSON-ready) to the current version,
        sensitive fields redacted."""
        version, data = self.upcast(event.type, event.schema_version, event.data)
        envelope = event.envelope()
        envelope.update(schema_version=version, data=self.redact(event.type, version, data))
        return envelope


registry = EventRegistry()
"""The process-wide registry every service's ``events.py`` registers into."""


def load_all_event_schemas() -> list[str]:
    """Import every module listed under the entry point group; returns their names."""
    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
        loaded.append(entry.value)
    return loaded
