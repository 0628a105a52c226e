"""Event schemas: one registry of marshmallow schemas per event type and version.

A service declares its events in its own ``events.py``::

    @registry.event("ProjectPosted", version=2, upcast=lambda v1: {**v1, "currency": "USD"})
    class ProjectPostedV2(Schema): ...

``upcast`` turns the previous version's data into this version's. Appends are
encoded with the newest version; reads upcast whatever version is stored.
Services list their ``events`` module under the ``marketplace.event_schemas``
entry point group, so that tools and consumers can decode any event without
importing another service's code (``load_all_event_schemas``).

**Published events are a service's API.** ``published=`` says which fields of
an event type leave its service (``ALL``: every field but the sensitive ones;
a tuple: those fields; omitted: the type stays private). The relay puts only
published types on the broker, and only their published fields
(:meth:`EventRegistry.publish`); consumers and the gateway's views load them
with the published schema (:meth:`EventRegistry.published_event`), so nothing
outside the owner can depend on a private field. A sensitive field can never
be published. ``tests/repository/test_published_events.py`` keeps every
published schema compatible with what it promised before.

**Personal data** is declared too: ``personal={"email": "user_id"}`` names
each field that is a person's data and whose it is (the field holding their
id, or ``SUBJECT``/``ACTOR``). Those fields are encrypted in the log with a key
per person and read back transparently (``shared.personal``); once the person
is erased they read as ``ERASED``. They may be published: the relay decrypts
them for the services that need them (names, texts), and a consumer that keeps
them scrubs them when it hears ``PersonalDataErased``
(:meth:`EventRegistry.erase_published`).
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, TypeVar

from marshmallow import Schema, ValidationError
from marshmallow import fields as mfields

from shared.eventstore.contract import EventMetadata, NewEvent, RecordedEvent
from shared.personal import ACTOR as ACTOR
from shared.personal import ERASED as ERASED
from shared.personal import SUBJECT as SUBJECT
from shared.personal import erase_fields

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


ALL: Literal["all"] = "all"
"""``published=ALL``: every field of the schema except the sensitive ones."""
Published = tuple[str, ...] | Literal["all"] | None


@dataclass(frozen=True)
class _Version:
    schema: Schema
    upcast: Upcaster | None
    sensitive: tuple[str, ...] = ()
    published: tuple[str, ...] | None = None
    """The fields that leave the service; None: the type is private."""
    published_schema: Schema | None = None
    personal: Mapping[str, str] = field(default_factory=dict)
    """Personal field -> whose it is (a field naming the person, SUBJECT or ACTOR)."""


REDACTED = "[redacted]"


class NotPublished(SchemaError):
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"{event_type} is private to its service: it is not published")


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """An event as other services see it: its published fields only, loaded
    with the published schema, and the envelope every published event has.

    ``subject`` is the id of the entity the event is about (the owner's
    stream id), ``revision`` its number in that entity's history, so a
    consumer never needs to know how the owner names its streams."""

    event_id: uuid.UUID
    type: str
    version: int
    source: str
    subject: str
    revision: int
    position: int
    recorded_at: datetime
    metadata: EventMetadata
    data: dict[str, Any]

    @property
    def actor_id(self) -> str:
        return self.metadata.actor_id


class EventView(Protocol):
    """What a fold reads of an event, whether the owner's own
    (:class:`DecodedEvent`) or as published (:class:`PublishedEvent`)."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def subject(self) -> str: ...
    @property
    def metadata(self) -> EventMetadata: ...


def subject_of(stream: str) -> str:
    """The entity id of a ``<category>-<id>`` stream."""
    return stream.partition("-")[2]


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A recorded event whose data is validated and upcast to the current version."""

    recorded: RecordedEvent
    data: dict[str, Any]
    version: int

    @property
    def type(self) -> str:
        return self.recorded.type

    # The same names as PublishedEvent's, so a fold can take either.
    @property
    def event_id(self) -> uuid.UUID:
        return self.recorded.event_id

    @property
    def recorded_at(self) -> datetime:
        return self.recorded.recorded_at

    @property
    def subject(self) -> str:
        return subject_of(self.recorded.stream)

    @property
    def position(self) -> int:
        return self.recorded.position

    @property
    def revision(self) -> int:
        return self.recorded.revision

    @property
    def metadata(self) -> EventMetadata:
        return self.recorded.metadata


class EventRegistry:
    def __init__(self) -> None:
        self._types: dict[str, dict[int, _Version]] = {}

    def event(
        self,
        event_type: str,
        version: int = 1,
        upcast: Upcaster | None = None,
        sensitive: tuple[str, ...] = (),
        published: Published = None,
        personal: Mapping[str, str] | None = None,
    ) -> Any:
        """Class decorator registering a marshmallow schema for one version.

        ``sensitive`` names fields (secrets, credentials) that leave the
        system only redacted: exports, replays and analysts never see them.
        ``published`` names the fields other services may see (see module doc).
        ``personal`` maps each field that is a person's data to whose it is:
        encrypted in the log with that person's key (see module doc).
        """

        def register(schema_cls: S) -> S:
            self.register(event_type, version, schema_cls(), upcast, sensitive, published, personal)
            return schema_cls

        return register

    def register(
        self,
        event_type: str,
        version: int,
        schema: Schema,
        upcast: Upcaster | None = None,
        sensitive: tuple[str, ...] = (),
        published: Published = None,
        personal: Mapping[str, str] | None = None,
    ) -> None:
        fields = tuple(schema.fields)
        personal = dict(personal or {})
        self._check_personal(event_type, version, schema, personal)
        if published == ALL:
            published = tuple(f for f in fields if f not in sensitive)
        if published is not None:
            unknown = set(published) - set(fields)
            if unknown:
                raise SchemaError(f"{event_type} v{version} publishes unknown fields {unknown}")
            secret = set(published) & set(sensitive)
            if secret:
                raise SchemaError(f"{event_type} v{version} may not publish sensitive {secret}")
        versions = self._types.setdefault(event_type, {})
        existing = versions.get(version)
        if existing is not None:
            if type(existing.schema) is type(schema):
                return  # the same module imported twice
            raise SchemaError(f"{event_type} v{version} is registered twice")
        if version > 1 and upcast is None:
            raise SchemaError(f"{event_type} v{version} needs an upcaster from v{version - 1}")
        published_schema = None
        if published is not None:
            published_schema = type(schema)(only=published) if published else Schema()
        versions[version] = _Version(
            schema, upcast, tuple(sensitive), published, published_schema, personal
        )

    @staticmethod
    def _check_personal(
        event_type: str, version: int, schema: Schema, personal: Mapping[str, str]
    ) -> None:
        for name, owner in personal.items():
            field_ = schema.fields.get(name)
            if not isinstance(field_, mfields.String):
                # encrypted values and the erased marker are strings
                raise SchemaError(f"{event_type} v{version}: personal {name!r} must be a String")
            if field_.validators:
                raise SchemaError(
                    f"{event_type} v{version}: personal {name!r} cannot be validated in the "
                    "event schema (it may read as erased); validate it in the command"
                )
            if owner not in (SUBJECT, ACTOR) and owner not in schema.fields:
                raise SchemaError(f"{event_type} v{version}: {name!r} belongs to unknown {owner!r}")

    def personal_fields(self, event_type: str, version: int) -> Mapping[str, str]:
        """The personal fields of a stored version (nothing for unknown types)."""
        versions = self._types.get(event_type)
        found = versions.get(version) if versions else None
        return found.personal if found is not None else {}

    def personal_types(self) -> list[str]:
        """Every type with a personal field in some version."""
        return sorted(t for t, vs in self._types.items() if any(v.personal for v in vs.values()))

    def erase_published(self, envelope: Mapping[str, Any], person: str) -> dict[str, Any]:
        """A published envelope (as a consumer keeps it) with ``person``'s
        fields erased: what the relay would publish now that their keys are gone."""
        event_type = str(envelope["event_type"])
        personal = self.personal_fields(event_type, int(envelope["schema_version"]))
        if not personal:
            return dict(envelope)
        actor = str((envelope.get("metadata") or {}).get("actor_id") or "")
        data = erase_fields(personal, envelope["data"], person, str(envelope["subject"]), actor)
        return {**envelope, "data": data}

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

    def upcast(
        self, event_type: str, version: int, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
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
            loaded: dict[str, Any] = schema.load(upcast)
        except ValidationError as exc:
            raise InvalidEventPayload(event_type, current, exc.normalized_messages()) from exc
        return loaded

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

    # -- the published API ------------------------------------------------------

    def published_fields(self, event_type: str) -> tuple[str, ...] | None:
        """The current version's published fields; None if the type is private
        (or unknown: what a registry has not heard of, it does not publish)."""
        versions = self._types.get(event_type)
        if not versions:
            return None
        return versions[max(versions)].published

    def declared_in(self, event_type: str) -> str:
        """The module that declares the type's current schema."""
        return type(self._version(event_type, self.current_version(event_type)).schema).__module__

    def is_published(self, event_type: str) -> bool:
        return self.published_fields(event_type) is not None

    def published_schemas(self) -> dict[str, tuple[int, Schema]]:
        """Every published type with its current version and published schema."""
        found = {}
        for event_type, versions in self._types.items():
            current = versions[max(versions)]
            if current.published_schema is not None:
                found[event_type] = (max(versions), current.published_schema)
        return found

    def publish(self, event: RecordedEvent) -> dict[str, Any] | None:
        """The event's published envelope (JSON-ready), or None if it is private."""
        fields = self.published_fields(event.type)
        if fields is None:
            return None
        version, data = self.upcast(event.type, event.schema_version, event.data)
        meta = event.metadata
        return {
            "event_id": str(event.event_id),
            "event_type": event.type,
            "schema_version": version,
            "source": meta.source,
            "subject": subject_of(event.stream),
            "revision": event.revision,
            "position": event.position,
            "recorded_at": event.recorded_at.isoformat(),
            "metadata": {
                "correlation_id": meta.correlation_id,
                "causation_id": meta.causation_id,
                "actor_id": meta.actor_id,
            },
            "data": {k: data[k] for k in fields if k in data},
        }

    def published_event(self, event: RecordedEvent, *, private: bool = False) -> PublishedEvent:
        """The event as a consumer sees it. ``private``: with every field, for
        the owner's own projections of its own streams."""
        if private:
            data = self.decode_data(event.type, event.schema_version, event.data)
            version = self.current_version(event.type)
        else:
            envelope = self.publish(event)
            if envelope is None:
                raise NotPublished(event.type)
            version, data = envelope["schema_version"], self._load_published(envelope)
        return PublishedEvent(
            event_id=event.event_id,
            type=event.type,
            version=version,
            source=event.metadata.source,
            subject=subject_of(event.stream),
            revision=event.revision,
            position=event.position,
            recorded_at=event.recorded_at,
            metadata=event.metadata,
            data=data,
        )

    def decode_published(self, envelope: Mapping[str, Any]) -> PublishedEvent:
        """A published envelope (from the broker) back to an event, validated
        with the published schema; raises if the type is not published."""
        meta = envelope.get("metadata") or {}
        version, data = self._published_data(envelope)
        return PublishedEvent(
            event_id=uuid.UUID(str(envelope["event_id"])),
            type=str(envelope["event_type"]),
            version=version,
            source=str(envelope.get("source") or ""),
            subject=str(envelope.get("subject") or ""),
            revision=int(envelope["revision"]),
            position=int(envelope["position"]),
            recorded_at=datetime.fromisoformat(str(envelope["recorded_at"])),
            metadata=EventMetadata(
                correlation_id=str(meta.get("correlation_id") or ""),
                causation_id=str(meta.get("causation_id") or ""),
                actor_id=str(meta.get("actor_id") or ""),
                source=str(envelope.get("source") or ""),
            ),
            data=data,
        )

    def _published_data(self, envelope: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        event_type = str(envelope["event_type"])
        if not self.is_published(event_type):
            raise NotPublished(event_type)
        version, data = self.upcast(
            event_type, int(envelope["schema_version"]), dict(envelope["data"])
        )
        return version, self._load_published({"event_type": event_type, "data": data})

    def _load_published(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        event_type = envelope["event_type"]
        current = self._version(event_type, self.current_version(event_type))
        assert current.published_schema is not None
        try:
            loaded: dict[str, Any] = current.published_schema.load(envelope["data"])
        except ValidationError as exc:
            version = self.current_version(event_type)
            raise InvalidEventPayload(event_type, version, exc.normalized_messages()) from exc
        return loaded


registry = EventRegistry()
"""The process-wide registry every service's ``events.py`` registers into."""


EXTRA_SCHEMAS_VARIABLE = "EXTRA_EVENT_SCHEMAS"
"""Comma-separated modules that declare more event schemas (a test's own
event types, which a relay it starts must know in order to publish them)."""


def load_all_event_schemas() -> list[str]:
    """Import every module listed under the entry point group (and in
    ``EXTRA_EVENT_SCHEMAS``); returns their names."""
    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
        loaded.append(entry.value)
    for module in filter(None, os.environ.get(EXTRA_SCHEMAS_VARIABLE, "").split(",")):
        importlib.import_module(module.strip())
        loaded.append(module.strip())
    return loaded
