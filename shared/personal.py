"""Personal data in the log: encrypted with a key per person, erased by deleting the key.

The log is immutable, so personal data cannot be deleted from it; it can be
made unreadable. Every event schema names its personal fields and whose they
are (``registry.event(..., personal={"email": "user_id"})``). When an event
is appended, each of those fields is encrypted (AES-GCM) with the key of that
person held by the service that records the event; when events are read, they
are decrypted again. Erasing a person deletes their keys: what the log holds
of them then reads as :data:`ERASED`, for the owner, the relay, the gateway's
views, the event tool's exports and replays alike.

Keys live in a keyring beside the log (the ``personal_keys`` table of the
event store's database, or ``PERSONAL_KEYS_URL``), never in it: one row per
(service, person). A service creates and erases only its own rows; readers of
the log (the relay, view projections, the event tool) read them only to
decrypt what they read. An erased person keeps a row without a key, so what a
service records about them afterwards is stored already erased.

:class:`PersonalDataStore` wraps any event store with this, so every reader
and writer gets it in one place (:func:`shared.eventstore.open_event_store`).
"""

from __future__ import annotations

import abc
import base64
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine

from shared.database import create_schema
from shared.eventstore.contract import (
    AppendResult,
    EventMetadata,
    EventStore,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamState,
    Subscription,
)
from shared.logging import get_logger
from shared.sql import insert_for, write_transaction

ERASED = "[erased]"
"""What a personal field reads as once its person's key is gone."""

SEALED_PREFIX = "pii:1:"
"""How an encrypted field starts in the log (format version 1: AES-256-GCM,
a 12-byte nonce, then ciphertext and tag, base64url)."""

SUBJECT = "@subject"
"""Owner spec: the person is the entity the event is about (its stream's id)."""
ACTOR = "@actor"
"""Owner spec: the person is who caused the event (``metadata.actor_id``)."""

NONCE_BYTES = 12
KeyId = tuple[str, str]
"""(service, person id)."""

log = get_logger(__name__)


class PersonalDataError(Exception):
    """A sealed value that does not open with its key: tampered or corrupt."""


# -- the pure part -------------------------------------------------------------------


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def associated_data(service: str, person: str) -> bytes:
    """Binds a ciphertext to its key's owner: a value moved to another
    person's event does not open."""
    return f"{service}\x1f{person}".encode()


def seal(value: str, key: bytes, aad: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), aad)
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def unseal(token: str, key: bytes | AESGCM | None, aad: bytes) -> str:
    """The value; :data:`ERASED` when there is no key (erased, or never
    kept); :class:`PersonalDataError` when the key does not open it."""
    if key is None:
        return ERASED
    cipher = AESGCM(key) if isinstance(key, bytes) else key
    try:
        raw = base64.urlsafe_b64decode(token[len(SEALED_PREFIX) :])
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
    except (InvalidTag, ValueError) as exc:  # binascii.Error is a ValueError
        raise PersonalDataError("a personal field does not open with its key") from exc


def person_of(owner: str, data: Mapping[str, Any], subject: str, actor: str) -> str | None:
    """Whose a personal field is, by its owner spec (a data field's name,
    :data:`SUBJECT` or :data:`ACTOR`); None when the event does not say."""
    if owner == SUBJECT:
        person: object = subject
    elif owner == ACTOR:
        person = actor
    else:
        person = data.get(owner)
    return str(person) if person else None


def erase_fields(
    personal: Mapping[str, str],
    data: Mapping[str, Any],
    person: str,
    subject: str,
    actor: str,
) -> dict[str, Any]:
    """``data`` with the fields of ``person`` replaced by :data:`ERASED`:
    what a reader of the log sees once that person's keys are gone."""
    out = dict(data)
    for field, owner in personal.items():
        if isinstance(out.get(field), str) and person_of(owner, data, subject, actor) == person:
            out[field] = ERASED
    return out


class PersonalFields(Protocol):
    """What the schema registry says about personal fields (see shared.schemas)."""

    def personal_fields(self, event_type: str, version: int) -> Mapping[str, str]: ...


def _subject(stream: str) -> str:
    return stream.partition("-")[2]


def _wanted(
    schemas: PersonalFields, event_type: str, version: int, data: Mapping[str, Any]
) -> Mapping[str, str]:
    personal = schemas.personal_fields(event_type, version)
    return {f: o for f, o in personal.items() if isinstance(data.get(f), str)} if personal else {}


def seal_event(schemas: PersonalFields, keyring: Keyring, stream: str, event: NewEvent) -> NewEvent:
    """The event with each personal field encrypted with its person's key
    (made on first use) of the recording service; stored as :data:`ERASED`
    for a person already erased."""
    personal = _wanted(schemas, event.type, event.schema_version, event.data)
    if not personal:
        return event
    service, data = event.metadata.source, dict(event.data)
    for field, owner in personal.items():
        if is_sealed(data[field]) or data[field] == ERASED:
            continue
        person = person_of(owner, event.data, _subject(stream), event.metadata.actor_id)
        if person is None:
            continue
        key = keyring.key_for_writing(service, person)
        aad = associated_data(service, person)
        data[field] = ERASED if key is None else seal(data[field], key, aad)
    return replace(event, data=data)


def open_events(
    schemas: PersonalFields, keyring: Keyring, events: Sequence[RecordedEvent]
) -> list[RecordedEvent]:
    """The events with their personal fields decrypted (one keyring read for
    the lot); fields whose key is gone read as :data:`ERASED`."""
    plan: list[tuple[int, dict[str, KeyId]]] = []
    wanted: set[KeyId] = set()
    for i, event in enumerate(events):
        personal = _wanted(schemas, event.type, event.schema_version, event.data)
        fields: dict[str, KeyId] = {}
        for field, owner in personal.items():
            if not is_sealed(event.data[field]):
                continue
            person = person_of(owner, event.data, _subject(event.stream), event.metadata.actor_id)
            fields[field] = (event.metadata.source, person or "")
        if fields:
            plan.append((i, fields))
            wanted.update(fields.values())
    if not plan:
        return list(events)
    ciphers = {k: AESGCM(key) for k, key in keyring.keys(wanted).items()}
    aads = {k: associated_data(*k) for k in wanted}
    opened = list(events)
    for i, fields in plan:
        event = events[i]
        data = dict(event.data)
        for field, key_id in fields.items():
            try:
                data[field] = unseal(data[field], ciphers.get(key_id), aads[key_id])
            except PersonalDataError:
                # Never a reader stopped by one field (a text that merely
                # looks sealed, typed by a user, is one): it reads as erased.
                log.warning("a personal field does not open", event_id=str(event.event_id))
                data[field] = ERASED
        opened[i] = replace(event, data=data)
    return opened


# -- keyrings ------------------------------------------------------------------------


class Keyring(abc.ABC):
    """Keys per (service, person). A missing key and an erased one read alike."""

    @abc.abstractmethod
    def keys(self, wanted: Iterable[KeyId]) -> dict[KeyId, bytes]:
        """The keys of ``wanted`` that exist (erased and unknown ones are absent)."""

    @abc.abstractmethod
    def key_for_writing(self, service: str, person: str) -> bytes | None:
        """The person's key at ``service``, made if they have none; None if
        they were erased there."""

    @abc.abstractmethod
    def erase(self, service: str, person: str) -> None:
        """Delete the key for good (idempotent); later writes store :data:`ERASED`."""


class MemoryKeyring(Keyring):
    """For tests."""

    def __init__(self) -> None:
        self.rows: dict[KeyId, bytes | None] = {}
        self._lock = threading.Lock()

    def keys(self, wanted: Iterable[KeyId]) -> dict[KeyId, bytes]:
        return {k: v for k in wanted if (v := self.rows.get(k)) is not None}

    def key_for_writing(self, service: str, person: str) -> bytes | None:
        with self._lock:
            return self.rows.setdefault((service, person), new_key())

    def erase(self, service: str, person: str) -> None:
        with self._lock:
            self.rows[(service, person)] = None


keyring_metadata = sa.MetaData()

personal_keys = sa.Table(
    "personal_keys",
    keyring_metadata,
    sa.Column("service", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(200), primary_key=True),
    sa.Column("key", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
)


class SqlKeyring(Keyring):
    """The keyring in a SQL database (the event store's own, by default)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_schema(engine, keyring_metadata)

    _KEYS = sa.select(personal_keys.c.person_id, personal_keys.c.key).where(
        personal_keys.c.service == sa.bindparam("service"),
        personal_keys.c.person_id.in_(sa.bindparam("people", expanding=True)),
        personal_keys.c.key.is_not(None),
    )

    def keys(self, wanted: Iterable[KeyId]) -> dict[KeyId, bytes]:
        by_service: dict[str, list[str]] = {}
        for service, person in set(wanted):
            by_service.setdefault(service, []).append(person)
        found: dict[KeyId, bytes] = {}
        with self.engine.connect() as conn:
            for service, people in by_service.items():
                for start in range(0, len(people), 500):
                    chunk = people[start : start + 500]
                    rows = conn.execute(self._KEYS, {"service": service, "people": chunk})
                    found.update({(service, r.person_id): r.key for r in rows})
        return found

    def _row(self, service: str, person: str) -> tuple[bool, bytes | None]:
        t = personal_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.key).where(t.service == service, t.person_id == person)
            ).one_or_none()
        return (row is not None, None if row is None else row.key)

    def key_for_writing(self, service: str, person: str) -> bytes | None:
        exists, key = self._row(service, person)
        if exists:
            return key
        with write_transaction(self.engine) as conn:
            insert = insert_for(conn.dialect)(personal_keys).values(
                service=service, person_id=person, key=new_key(), created_at=_now()
            )
            conn.execute(insert.on_conflict_do_nothing())
        return self._row(service, person)[1]

    def erase(self, service: str, person: str) -> None:
        now = _now()
        with write_transaction(self.engine) as conn:
            insert = insert_for(conn.dialect)(personal_keys).values(
                service=service, person_id=person, key=None, created_at=now, erased_at=now
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["service", "person_id"],
                    set_={"key": None, "erased_at": now},
                )
            )


def _now() -> datetime:
    return datetime.now(UTC)


# -- the store that applies it -------------------------------------------------------


class PersonalDataStore(EventStore):
    """An event store whose personal fields are encrypted on append and
    decrypted on every read (see module doc). ``inner`` is the backend."""

    def __init__(self, inner: EventStore, keyring: Keyring, schemas: PersonalFields | None = None):
        self.inner = inner
        self.keyring = keyring
        self._schemas = schemas

    @property
    def schemas(self) -> PersonalFields:
        if self._schemas is None:
            from shared.schemas import registry

            self._schemas = registry
        return self._schemas

    def erase(self, service: str, person: str) -> None:
        self.keyring.erase(service, person)

    def _open(self, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        return open_events(self.schemas, self.keyring, events)

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        sealed = [seal_event(self.schemas, self.keyring, stream, e) for e in events]
        return self.inner.append(stream, sealed, expected_revision)

    def read_stream(
        self,
        stream: str,
        from_revision: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        return self._open(self.inner.read_stream(stream, from_revision, backwards, limit))

    def read_all(
        self,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        batch: list[RecordedEvent] = []
        for event in self.inner.read_all(from_position, backwards, limit, categories, event_types):
            batch.append(event)
            if len(batch) >= 500:
                yield from self._open(batch)
                batch = []
        yield from self._open(batch)

    def subscribe(
        self,
        checkpoint: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Subscription:
        return _OpeningSubscription(self.inner.subscribe(checkpoint, categories, event_types), self)

    def stream_revision(self, stream: str) -> int | None:
        return self.inner.stream_revision(stream)

    def get_stream_metadata(self, stream: str) -> StreamMetadata:
        return self.inner.get_stream_metadata(stream)

    def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None:
        self.inner.set_stream_metadata(stream, metadata)

    def delete_stream(
        self, stream: str, expected_revision: ExpectedRevision = StreamState.ANY
    ) -> None:
        self.inner.delete_stream(stream, expected_revision)

    def last_position(self) -> int:
        return self.inner.last_position()

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # backend-specific extras (the SQL store's engine, read_page, ...)
        return getattr(self.inner, name)


class _OpeningSubscription(Subscription):
    def __init__(self, inner: Subscription, store: PersonalDataStore) -> None:
        self.inner = inner
        self.store = store

    def next_batch(self, max_count: int = 500, timeout: float = 1.0) -> list[RecordedEvent]:
        return self.store._open(self.inner.next_batch(max_count, timeout))

    def stop(self) -> None:
        self.inner.stop()

    @property
    def stopped(self) -> bool:
        return self.inner.stopped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def unwrap(store: EventStore) -> EventStore:
    """The backend under a :class:`PersonalDataStore` (for backend-specific tools)."""
    return store.inner if isinstance(store, PersonalDataStore) else store


__all__ = [
    "ACTOR",
    "ERASED",
    "SUBJECT",
    "EventMetadata",
    "Keyring",
    "MemoryKeyring",
    "PersonalDataError",
    "PersonalDataStore",
    "SqlKeyring",
    "erase_fields",
    "open_events",
    "seal_event",
    "unwrap",
]
