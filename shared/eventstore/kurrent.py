"""Event store on KurrentDB (formerly EventStoreDB) through kurrentdbclient.

gRPC calls block the eventlet hub (a server that accepts but never answers
froze a Nameko process for 20 s in our measurements), so inside a monkey
patched process every call goes through ``eventlet.tpool`` and always carries
an explicit deadline.

Our metadata maps onto KurrentDB's conventions: ``$correlationId`` and
``$causationId`` are the system's own keys; the schema version travels as
``schemaVersion`` in the event metadata.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from kurrentdbclient import KurrentDBClient
from kurrentdbclient import NewEvent as KdbNewEvent
from kurrentdbclient import RecordedEvent as KdbRecordedEvent
from kurrentdbclient import StreamState as KdbStreamState
from kurrentdbclient.exceptions import (
    DeadlineExceededError,
    NotFoundError,
    ServiceUnavailableError,
    StreamIsDeletedError,
    WrongCurrentVersionError,
)

from shared.eventstore.contract import (
    AppendResult,
    EventMetadata,
    EventStore,
    EventStoreUnavailable,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamNotFound,
    StreamState,
    Subscription,
    WrongExpectedRevision,
    validate_append,
)
from shared.logging import redact_uri

T = TypeVar("T")

_EXPECTED = {
    StreamState.ANY: KdbStreamState.ANY,
    StreamState.NO_STREAM: KdbStreamState.NO_STREAM,
    StreamState.STREAM_EXISTS: KdbStreamState.EXISTS,
}
_SYSTEM_KEYS = {"$correlationId": "correlation_id", "$causationId": "causation_id"}


def _in_eventlet() -> bool:
    try:
        from eventlet import patcher
    except ImportError:  # pragma: no cover - eventlet is a dependency
        return False
    patched: bool = patcher.is_monkey_patched("thread")
    return patched


def _blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking gRPC call without freezing eventlet's hub."""
    if _in_eventlet():
        from eventlet import tpool

        result: T = tpool.execute(fn, *args, **kwargs)
        return result
    return fn(*args, **kwargs)


def _encode_metadata(event: NewEvent) -> bytes:
    meta = event.metadata.to_dict()
    meta["$correlationId"] = meta.pop("correlation_id")
    meta["$causationId"] = meta.pop("causation_id")
    meta["schemaVersion"] = event.schema_version
    return json.dumps(meta).encode()


def _decode(kdb: KdbRecordedEvent) -> RecordedEvent:
    meta = json.loads(kdb.metadata or b"{}")
    schema_version = int(meta.pop("schemaVersion", 1))
    for system_key, ours in _SYSTEM_KEYS.items():
        if system_key in meta:
            meta[ours] = meta.pop(system_key)
    return RecordedEvent(
        event_id=kdb.id,
        type=kdb.type,
        schema_version=schema_version,
        data=json.loads(kdb.data or b"{}"),
        metadata=EventMetadata.from_dict(meta),
        stream=kdb.stream_name,
        revision=kdb.stream_position,
        position=kdb.commit_position,
        recorded_at=kdb.recorded_at or datetime.now(UTC),
    )


def _actual(value: Any) -> int | None:
    return value if isinstance(value, int) else None


class KurrentEventStore(EventStore):
    def __init__(self, uri: str, timeout: float = 5.0) -> None:
        self.timeout = timeout
        try:
            self.client = _blocking(KurrentDBClient, uri=uri)
        except (ServiceUnavailableError, DeadlineExceededError) as exc:
            raise EventStoreUnavailable(
                f"cannot reach KurrentDB at {redact_uri(uri)}: {exc}"
            ) from exc

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return _blocking(fn, *args, **kwargs)
        except (ServiceUnavailableError, DeadlineExceededError) as exc:
            raise EventStoreUnavailable(str(exc)) from exc

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        events = list(events)
        validate_append(stream, events, expected_revision)
        current = (
            _EXPECTED[expected_revision]
            if isinstance(expected_revision, StreamState)
            else expected_revision
        )
        new = [
            KdbNewEvent(
                type=e.type,
                data=json.dumps(e.data).encode(),
                metadata=_encode_metadata(e),
                id=e.event_id,
            )
            for e in events
        ]
        try:
            position = self._call(
                self.client.append_to_stream, stream, events=new, current_version=current
            )
        except WrongCurrentVersionError as exc:
            raise WrongExpectedRevision(
                stream, expected_revision, _actual(exc.actual_version)
            ) from exc
        if isinstance(expected_revision, int):
            # An exact expectation fixes the revisions; no need to look them up.
            first = expected_revision + 1
            return AppendResult(first, first + len(events) - 1, position)
        return self._locate(stream, [e.event_id for e in events])

    def _locate(self, stream: str, ids: list[uuid.UUID]) -> AppendResult:
        """KurrentDB answers an append with one position; find our revisions."""
        wanted = set(ids)
        found: dict[uuid.UUID, KdbRecordedEvent] = {}
        for kdb in self._call(self.client.get_stream, stream, backwards=True, limit=len(ids) + 64):
            if kdb.id in wanted:
                found[kdb.id] = kdb
            if len(found) == len(wanted):
                break
        if len(found) != len(wanted):
            raise WrongExpectedRevision(stream, StreamState.ANY, self.stream_revision(stream))
        first, last = found[ids[0]], found[ids[-1]]
        return AppendResult(first.stream_position, last.stream_position, last.commit_position)

    def read_stream(
        self,
        stream: str,
        from_revision: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        kwargs: dict[str, Any] = {"stream_position": from_revision, "backwards": backwards}
        if limit is not None:
            kwargs["limit"] = limit
        try:
            recorded = self._call(self.client.get_stream, stream, **kwargs)
        except (NotFoundError, StreamIsDeletedError) as exc:
            raise StreamNotFound(stream) from exc
        return [_decode(r) for r in recorded]

    def _filters(
        self, categories: Sequence[str] | None, event_types: Sequence[str] | None
    ) -> dict[str, Any]:
        if categories:
            return {
                "filter_include": [f"{c}-" for c in categories],
                "filter_by_stream_name": True,
                "filter_by_prefix": True,
            }
        if event_types:
            return {"filter_include": list(event_types), "filter_by_prefix": False}
        return {}

    def read_all(
        self,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        kwargs = self._filters(categories, event_types)
        kwargs.update(commit_position=from_position, backwards=backwards)
        if limit is not None:
            kwargs["limit"] = limit
        response = self._call(self.client.read_all, **kwargs)
        types = set(event_types or ())
        while True:
            kdb = _blocking(next, response, None)
            if kdb is None:
                return
            if types and kdb.type not in types:
                continue
            yield _decode(kdb)

    def subscribe(
        self,
        checkpoint: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Subscription:
        kwargs = self._filters(categories, event_types)
        kwargs["commit_position"] = checkpoint
        source = self._call(self.client.subscribe_to_all, **kwargs)
        return KurrentSubscription(source, set(event_types or ()))

    def stream_revision(self, stream: str) -> int | None:
        try:
            return _actual(self._call(self.client.get_current_version, stream))
        except (NotFoundError, StreamIsDeletedError):
            return None

    def get_stream_metadata(self, stream: str) -> StreamMetadata:
        meta, _ = self._call(self.client.get_stream_metadata, stream)
        return StreamMetadata(
            max_age_seconds=meta.get("$maxAge"),
            max_count=meta.get("$maxCount"),
            truncate_before=meta.get("$tb"),
        )

    def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None:
        meta = {
            key: value
            for key, value in (
                ("$maxAge", metadata.max_age_seconds),
                ("$maxCount", metadata.max_count),
                ("$tb", metadata.truncate_before),
            )
            if value is not None
        }
        self._call(self.client.set_stream_metadata, stream, metadata=meta)

    def delete_stream(
        self, stream: str, expected_revision: ExpectedRevision = StreamState.ANY
    ) -> None:
        if self.stream_revision(stream) is None:
            raise StreamNotFound(stream)
        current = (
            _EXPECTED[expected_revision]
            if isinstance(expected_revision, StreamState)
            else expected_revision
        )
        try:
            self._call(self.client.delete_stream, stream, current_version=current)
        except WrongCurrentVersionError as exc:
            raise WrongExpectedRevision(
                stream, expected_revision, _actual(exc.actual_version)
            ) from exc

    def last_position(self) -> int:
        return int(self._call(self.client.get_commit_position))

    def ping(self) -> None:
        self.last_position()

    def close(self) -> None:
        _blocking(self.client.close)


class KurrentSubscription(Subscription):
    """Pumps a gRPC catch-up subscription from a real OS thread into a queue,
    so that waiting for the next event never blocks the eventlet hub."""

    _DONE = object()

    def __init__(self, source: Any, event_types: set[str]) -> None:
        self._source = source
        self._types = event_types
        self._stopped = False
        # Under eventlet's monkey patch these are green; the blocking gRPC
        # call inside the pump goes through tpool either way.
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._pump_thread = threading.Thread(
            target=self._pump, daemon=True, name="kurrentdb-subscription"
        )
        self._pump_thread.start()

    def _pump(self) -> None:
        try:
            while not self._stopped:
                kdb = _blocking(next, self._source, None)
                if kdb is None:
                    break
                if self._types and kdb.type not in self._types:
                    continue
                self._queue.put(_decode(kdb))
        except Exception as exc:
            if not self._stopped:
                self._queue.put(exc)
        finally:
            self._queue.put(self._DONE)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def next_batch(self, max_count: int = 500, timeout: float = 1.0) -> list[RecordedEvent]:
        batch: list[RecordedEvent] = []
        try:
            item = self._queue.get(timeout=timeout)
            while True:
                if item is self._DONE:
                    self._stopped = True
                    break
                if isinstance(item, Exception):
                    self._stopped = True
                    raise EventStoreUnavailable(f"subscription ended: {item}") from item
                batch.append(item)
                if len(batch) >= max_count:
                    break
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        return batch

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            _blocking(self._source.stop)
