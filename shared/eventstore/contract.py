"""The event store contract every backend implements, modelled on KurrentDB.

Streams are named ``<category>-<id>``; revisions count from 0 without gaps.
Every event also has a global position: an integer that grows in the order in
which readers of "all events" see them. Positions need not be dense (KurrentDB
commit positions are byte offsets), only monotonic and stable.
"""

from __future__ import annotations

import abc
import enum
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_EVENTS_PER_APPEND = 10_000


class StreamState(enum.Enum):
    """Expected revisions that are not a number."""

    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"


ExpectedRevision = StreamState | int


class EventStoreError(Exception):
    """Base class of every error the event store raises."""


class WrongExpectedRevision(EventStoreError):
    def __init__(self, stream: str, expected: ExpectedRevision, actual: int | None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        shown_expected = expected.value if isinstance(expected, StreamState) else expected
        shown_actual = "no stream" if actual is None else actual
        super().__init__(
            f"wrong expected revision for stream {stream!r}: "
            f"expected {shown_expected}, actual {shown_actual}"
        )


class StreamNotFound(EventStoreError):
    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"stream {stream!r} not found")


class InvalidAppend(EventStoreError, ValueError):
    """The append request itself is malformed (empty, too large, bad names)."""


class EventStoreUnavailable(EventStoreError):
    """The backend could not be reached or did not answer in time."""


_KNOWN_METADATA = frozenset({"correlation_id", "causation_id", "actor_id", "source"})


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """Who caused an event and within which request.

    ``correlation_id`` is shared by everything one user request sets off;
    ``causation_id`` is the id of the message (request or event) that directly
    caused this one; ``actor_id`` is the user, or ``system:<service>``.
    ``source`` is the service that recorded the event.
    """

    correlation_id: str
    causation_id: str
    actor_id: str
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def root(cls, actor_id: str, source: str = "") -> EventMetadata:
        """Metadata for an event that starts a new causal chain."""
        first = str(uuid.uuid4())
        return cls(correlation_id=first, causation_id=first, actor_id=actor_id, source=source)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update(
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            actor_id=self.actor_id,
            source=self.source,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventMetadata:
        """Build from stored metadata (on the read path of every event: keep it cheap)."""
        get = data.get
        extra = {k: v for k, v in data.items() if k not in _KNOWN_METADATA} if len(data) > 4 else {}
        return cls(
            get("correlation_id", ""),
            get("causation_id", ""),
            get("actor_id", ""),
            get("source", ""),
            extra,
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    metadata: EventMetadata
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    event_id: uuid.UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    stream: str
    revision: int
    position: int
    recorded_at: datetime

    @property
    def category(self) -> str:
        return category_of(self.stream)

    def envelope(self) -> dict[str, Any]:
        """The JSON-ready form used on the wire and in exports."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.type,
            "schema_version": self.schema_version,
            "stream": self.stream,
            "revision": self.revision,
            "position": self.position,
            "recorded_at": self.recorded_at.isoformat(),
            "metadata": self.metadata.to_dict(),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed: the revisions and the position of its last event."""

    first_revision: int
    last_revision: int
    position: int

    @property
    def next_expected_revision(self) -> int:
        return self.last_revision


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Retention and deletion settings of a stream (KurrentDB's $maxAge etc.)."""

    max_age_seconds: int | None = None
    max_count: int | None = None
    truncate_before: int | None = None


def category_of(stream: str) -> str:
    """The part of a stream name before the first ``-``."""
    return stream.split("-", 1)[0]


def check_expected_revision(stream: str, expected: ExpectedRevision, actual: int | None) -> None:
    """Raise WrongExpectedRevision unless ``actual`` (None: no stream) satisfies ``expected``."""
    if expected is StreamState.ANY:
        return
    if expected is StreamState.NO_STREAM:
        ok = actual is None
    elif expected is StreamState.STREAM_EXISTS:
        ok = actual is not None
    else:
        ok = actual == expected
    if not ok:
        raise WrongExpectedRevision(stream, expected, actual)


def validate_append(stream: str, events: Sequence[NewEvent], expected: ExpectedRevision) -> None:
    if not stream or stream.startswith("$") or len(stream) > 500:
        raise InvalidAppend(f"invalid stream name {stream!r}")
    if not events:
        raise InvalidAppend("an append needs at least one event")
    if len(events) > MAX_EVENTS_PER_APPEND:
        raise InvalidAppend(f"at most {MAX_EVENTS_PER_APPEND} events per append")
    if isinstance(expected, int) and not isinstance(expected, bool) and expected < 0:
        raise InvalidAppend("an exact expected revision is 0 or more")
    ids = [e.event_id for e in events]
    if len(set(ids)) != len(ids):
        raise InvalidAppend("event ids within one append must be distinct")
    for event in events:
        if not event.type or event.schema_version < 1:
            raise InvalidAppend(f"event {event.event_id} needs a type and a schema version >= 1")


class Subscription(abc.ABC):
    """A catch-up subscription: replays history after a checkpoint, then goes live."""

    @abc.abstractmethod
    def next_batch(self, max_count: int = 500, timeout: float = 1.0) -> list[RecordedEvent]:
        """Events after the last one returned; waits up to ``timeout`` s, [] if none."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Ends the subscription; a waiting ``next_batch`` returns soon after."""

    @property
    @abc.abstractmethod
    def stopped(self) -> bool: ...

    def __iter__(self) -> Iterator[RecordedEvent]:
        while not self.stopped:
            yield from self.next_batch()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EventStore(abc.ABC):
    """The one contract: see tests in ``shared/tests/eventstore_contract.py``."""

    @abc.abstractmethod
    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        """Append atomically, checking the expected revision.

        Re-appending events whose ids are already in the stream returns the
        original result and records nothing twice.
        """

    @abc.abstractmethod
    def read_stream(
        self,
        stream: str,
        from_revision: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """One stream's events, honouring its metadata; StreamNotFound if absent or deleted."""

    @abc.abstractmethod
    def read_all(
        self,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        """All events in global order from ``from_position`` (inclusive; None: the start,
        or the end when reading backwards)."""

    @abc.abstractmethod
    def subscribe(
        self,
        checkpoint: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Subscription:
        """Events strictly after ``checkpoint`` (None: from the start), then live ones."""

    @abc.abstractmethod
    def stream_revision(self, stream: str) -> int | None:
        """The last revision of a stream, None if it does not exist or was deleted."""

    @abc.abstractmethod
    def get_stream_metadata(self, stream: str) -> StreamMetadata: ...

    @abc.abstractmethod
    def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None: ...

    @abc.abstractmethod
    def delete_stream(
        self, stream: str, expected_revision: ExpectedRevision = StreamState.ANY
    ) -> None:
        """Soft delete: the stream reads as absent; a later append recreates it,
        continuing its revisions, and the old events stay hidden."""

    @abc.abstractmethod
    def last_position(self) -> int:
        """Position of the newest event readers can see; 0 when empty."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise EventStoreUnavailable unless the backend answers."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
