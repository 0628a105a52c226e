"""What a service uses to record and load its own events.

Entrypoints keep domain logic pure: ``evolve(state, event) -> state`` folds a
stream into state, ``decide(state) -> [(type, data), ...]`` says what happens.
:meth:`ServiceEventLog.execute` loads, decides and appends with the stream's
revision as the expected one, and decides again on the fresh state if another
writer got there first.

Retried requests: when the request carries the client's Idempotency-Key, the
events a command records get ids derived from it (and from the stream and
the command's place in the request), and so do new entities' ids
(:meth:`ServiceEventLog.new_id`). A retry after a failure the client could not
see past (the gateway killed mid-request, a lost answer) finds its first
attempt's events in the stream and returns the state instead of deciding
again, so it answers as the first attempt would have, and records nothing twice.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from nameko.extensions import DependencyProvider

from shared.config import settings
from shared.context import Context, worker_context
from shared.errors import StaleState
from shared.eventstore import (
    AppendResult,
    EventStore,
    ExpectedRevision,
    StreamNotFound,
    StreamState,
    WrongExpectedRevision,
    open_event_store,
)
from shared.schemas import DecodedEvent, EventRegistry, registry

S = TypeVar("S")
EventSpec = tuple[str, Mapping[str, Any]]


class ServiceEventLog:
    def __init__(self, store: EventStore, context: Context, schemas: EventRegistry = registry):
        self.store = store
        self.context = context
        self.schemas = schemas
        self._appends: Counter[str] = Counter()
        self._new_ids: Counter[str] = Counter()

    def new_id(self, purpose: str) -> str:
        """An id for a new entity: derived from the request's key when it has
        one (a retry creates the same entity, not a second one)."""
        key = self.context.request_key
        if key is None:
            return str(uuid.uuid4())
        n = self._new_ids[purpose]
        self._new_ids[purpose] += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|id|{purpose}|{n}"))

    def recorded_by_this_request(self, stream: str) -> bool:
        """Whether this request (a retry) already recorded its next append to ``stream``."""
        first = self._request_event_id(stream, 0)
        if first is None:
            return False
        try:
            return any(e.event_id == first for e in self.store.read_stream(stream))
        except StreamNotFound:
            return False

    def _request_event_id(self, stream: str, index: int) -> uuid.UUID | None:
        key = self.context.request_key
        if key is None:
            return None
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|{stream}|{self._appends[stream]}|{index}")

    def record(
        self,
        stream: str,
        events: Sequence[EventSpec],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        """Validate against the registered schemas and append with this request's
        metadata. A wrong expected revision becomes :class:`StaleState` (409)."""
        metadata = self.context.metadata()
        new = [
            self.schemas.new_event(t, data, metadata, self._request_event_id(stream, i))
            for i, (t, data) in enumerate(events)
        ]
        try:
            result = self.store.append(stream, new, expected_revision)
            self._appends[stream] += 1
            return result
        except WrongExpectedRevision as exc:
            raise StaleState(
                "this changed while your request was handled; retry",
                {"stream": stream, "expected": str(exc.expected), "actual": exc.actual},
            ) from exc

    def load(self, stream: str) -> tuple[list[DecodedEvent], int | None]:
        """The stream's events (upcast) and its revision; ([], None) if absent."""
        try:
            recorded = self.store.read_stream(stream)
        except StreamNotFound:
            return [], None
        revision = recorded[-1].revision if recorded else self.store.stream_revision(stream)
        return [self.schemas.decode(e) for e in recorded], revision

    def state(
        self, stream: str, evolve: Callable[[S, DecodedEvent], S], initial: S
    ) -> tuple[S, int | None]:
        events, revision = self.load(stream)
        state = initial
        for event in events:
            state = evolve(state, event)
        return state, revision

    def execute(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        initial: S,
        decide: Callable[[S], Sequence[EventSpec]],
        attempts: int = 5,
    ) -> tuple[S, AppendResult | None]:
        """Run a command against a stream; returns the state it decided on."""
        for _ in range(attempts):
            recorded, revision = self.load(stream)
            state = initial
            for event in recorded:
                state = evolve(state, event)
            first = self._request_event_id(stream, 0)
            if first is not None and any(e.recorded.event_id == first for e in recorded):
                self._appends[stream] += 1
                return state, None  # this request's retry: its first attempt did it
            events = decide(state)
            if not events:
                return state, None
            expected: ExpectedRevision = StreamState.NO_STREAM if revision is None else revision
            try:
                return state, self.record(stream, events, expected)
            except StaleState:
                continue
        raise StaleState(
            "this kept changing while your request was handled; retry",
            {"stream": stream, "attempts": attempts},
        )

    def command(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        initial: S,
        decide: Callable[[S], Sequence[EventSpec]],
    ) -> S:
        """Run a command; return the stream's state after it.

        Only the events from the command's first revision on are read back
        and folded in, rather than the whole stream again.
        """
        state, result = self.execute(stream, evolve, initial, decide)
        if result is not None:
            for recorded in self.store.read_stream(stream, from_revision=result.first_revision):
                state = evolve(state, self.schemas.decode(recorded))
        return state


_stores: dict[str, EventStore] = {}
_stores_lock = threading.Lock()


def shared_event_store(url: str, timeout: float = 5.0) -> EventStore:
    """The process's one store for ``url`` (connections are pooled inside)."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = open_event_store(url, timeout=timeout)
        return store


def event_store_url_for(container: Any) -> str:
    return container.config.get("EVENT_STORE_URL") or settings().event_store_url


class EventLog(DependencyProvider):
    """Injects a :class:`ServiceEventLog` bound to the worker's request context."""

    def setup(self) -> None:
        self.store = shared_event_store(
            event_store_url_for(self.container), settings().event_store_timeout
        )

    def get_dependency(self, worker_ctx: Any) -> ServiceEventLog:
        return ServiceEventLog(self.store, worker_context(worker_ctx, self.container.service_name))
