"""The event store: one contract (``contract``), backends chosen by URL."""

from __future__ import annotations

from shared.eventstore.contract import (
    AppendResult,
    EventMetadata,
    EventStore,
    EventStoreError,
    EventStoreUnavailable,
    ExpectedRevision,
    InvalidAppend,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamNotFound,
    StreamState,
    Subscription,
    WrongExpectedRevision,
    category_of,
)

__all__ = [
    "AppendResult",
    "EventMetadata",
    "EventStore",
    "EventStoreError",
    "EventStoreUnavailable",
    "ExpectedRevision",
    "InvalidAppend",
    "NewEvent",
    "RecordedEvent",
    "StreamMetadata",
    "StreamNotFound",
    "StreamState",
    "Subscription",
    "WrongExpectedRevision",
    "category_of",
    "open_event_store",
]

KURRENT_SCHEMES = (
    "kurrentdb",
    "kurrentdb+discover",
    "esdb",
    "esdb+discover",
    "kdb",
    "kdb+discover",
)


def open_event_store(url: str, timeout: float = 5.0) -> EventStore:
    """The backend a URL names: ``sqlite:///file``, ``postgresql://...``,
    or ``kurrentdb://host:2113?tls=false`` (also ``esdb://``)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith(("sqlite", "postgresql")):
        from shared.eventstore.sql import SqlEventStore

        return SqlEventStore(url)
    if scheme in KURRENT_SCHEMES:
        from shared.eventstore.kurrent import KurrentEventStore

        return KurrentEventStore(url, timeout=timeout)
    raise ValueError(
        f"unsupported event store URL scheme {scheme!r}: use sqlite, postgresql or kurrentdb"
    )
