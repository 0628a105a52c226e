"""What a service uses to record and load its own events.

Entrypoints keep domain logic pure: ``evolve(state, event) -> state`` folds a
stream into state, ``decide(state) -> [(type, data), ...]`` says what happens.
:meth:`ServiceEventLog.execute` loads, decides and appends with the stream's
revision as the expected one, and decides again on the fresh state if another
writer got there first.
"""

from __future__ import annotations

import threading
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

    def record(
        self,
        stream: str,
        events: Sequence[EventSpec],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        """Validate against the registered schemas and append with this request's
        metadata. A wrong expected revision becomes :class:`StaleState` (409)."""
        metadata = self.context.metadata()
        new = [self.schemas.new_event(t, data, metadata) for t, data in events]
        try:
            return self.store.append(stream, new, expected_revision)
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
            state, revision = self.state(stream, evolve, initial)
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
