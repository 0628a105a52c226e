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
    "open_backend",
    "open_event_store",
    "with_personal_data",
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
    or ``kurrentdb://host:2113?tls=false`` (also ``esdb://``), with its
    personal fields encrypted and decrypted (``shared.personal``)."""
    return with_personal_data(open_backend(url, timeout))


def open_backend(url: str, timeout: float = 5.0) -> EventStore:
    """The bare backend a URL names: personal fields stay as stored."""
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith(("sqlite", "postgresql")):
        from shared.config import settings
        from shared.eventstore.sql import SqlEventStore

        return SqlEventStore(url, pool_size=settings().event_store_pool_size)
    if scheme in KURRENT_SCHEMES:
        from shared.eventstore.kurrent import KurrentEventStore

        return KurrentEventStore(url, timeout=timeout)
    raise ValueError(
        f"unsupported event store URL scheme {scheme!r}: use sqlite, postgresql or kurrentdb"
    )


def with_personal_data(backend: EventStore, keys_url: str | None = None) -> EventStore:
    """``backend`` encrypting personal fields with keys kept at ``keys_url``
    (default ``PERSONAL_KEYS_URL``, else the SQL store's own database, else
    ``$VAR_DIR/personal-keys.sqlite``)."""
    from shared.config import settings
    from shared.eventstore.sql import SqlEventStore
    from shared.personal import PersonalDataStore, SqlKeyring
    from shared.sql import shared_engine

    url = keys_url or settings().personal_keys_url
    if url:
        engine = shared_engine(url)
    elif isinstance(backend, SqlEventStore):
        engine = backend.engine
    else:
        engine = shared_engine(f"sqlite:///{settings().var_dir / 'personal-keys.sqlite'}")
    return PersonalDataStore(backend, SqlKeyring(engine))
