"""What a service uses to record and load its own events.

Entrypoints keep domain logic pure: ``evolve(state, event) -> state`` folds a
stream into state, ``decide(state) -> [(type, data), ...]`` says what happens.
An :class:`Aggregate` names one kind of entity a service keeps (its stream
name, its fold, its empty state), and every command of every service goes
through :meth:`ServiceEventLog.run`: load the entity, decide, append with the
stream's revision as the expected one, and decide again on the fresh state
if another writer got there first (up to ``attempts`` times, then
:class:`StaleState`, a 409). :meth:`ServiceEventLog.create` starts a new
entity's stream; :meth:`ServiceEventLog.record` stays for appends that are
not one entity's decision (several streams, or any revision).

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
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nameko.extensions import DependencyProvider

from shared.config import settings
from shared.context import Context, worker_context
from shared.errors import NotFound, StaleState
from shared.eventstore import (
    AppendResult,
    EventStore,
    ExpectedRevision,
    StreamNotFound,
    StreamState,
    WrongExpectedRevision,
    open_event_store,
)
from shared.logging import get_logger
from shared.schemas import DecodedEvent, EventRegistry, registry
from shared.validation import known_id

S = TypeVar("S")
EventSpec = tuple[str, Mapping[str, Any]]
Decide = Callable[[S], Sequence[EventSpec]]
EntityId = str | tuple[str, ...]

ATTEMPTS = 5
"""How many times a command decides before a stream that keeps moving is a 409."""


log = get_logger(__name__)


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """One kind of entity a service keeps, one stream per entity.

    ``stream`` names an entity's stream from its id (or from the parts of its
    id, given as a tuple). ``initial`` makes the empty state (called for every
    fold: a fold may build its state in place). ``exists`` says whether a state
    is an entity at all, for :meth:`require`. Ids come from callers: unless
    ``checks_id`` is off (an email address names a claim), one that is not a
    UUID names nothing.
    """

    name: str
    stream: Callable[..., str]
    evolve: Callable[[S, DecodedEvent], S]
    initial: Callable[[], S]
    exists: Callable[[S], bool] | None = None
    checks_id: bool = True

    def stream_for(self, entity_id: EntityId) -> str:
        parts = entity_id if isinstance(entity_id, tuple) else (entity_id,)
        if self.checks_id:
            parts = tuple(known_id(part, self.name) for part in parts)
        return self.stream(*(str(part) for part in parts))

    def require(self, state: S) -> S:
        """The state, or NotFound ("no such <name>") if it is no entity."""
        if self.exists is not None and not self.exists(state):
            raise NotFound(f"no such {self.name}")
        return state


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

    def forget(self, person_id: str) -> None:
        """Delete this service's keys for the person (crypto-shredding): what
        it recorded of them reads as erased from now on, and what it records
        about them later is stored erased (see ``shared.personal``)."""
        erase = getattr(self.store, "erase", None)
        if erase is None:
            raise TypeError("this event store keeps no keys of personal data")
        erase(self.context.service, person_id)

    # -- the command path ------------------------------------------------------

    def get(self, aggregate: Aggregate[S], entity_id: EntityId) -> S:
        """The entity's state now (its empty state if it has no stream)."""
        state, _ = self._fold(aggregate.stream_for(entity_id), aggregate.evolve, aggregate.initial)
        return state

    def run(
        self,
        aggregate: Aggregate[S],
        entity_id: EntityId,
        decide: Decide[S],
        attempts: int = ATTEMPTS,
    ) -> S:
        """Load the entity, decide, append at the revision it was loaded at, and
        decide again on the fresh state when another writer got there first.
        Returns the state after the command (unchanged if it decided nothing).

        ``attempts=1``: a conflict is not decided again but raised as
        :class:`StaleState`, for commands where losing a race is the answer
        (two sign-ups for one address, two rotations of one token).
        """
        stream = aggregate.stream_for(entity_id)
        state, result = self._execute(stream, aggregate.evolve, aggregate.initial, decide, attempts)
        return self._after(stream, aggregate.evolve, state, result)

    def run_each(
        self, aggregate: Aggregate[S], entity_ids: Sequence[EntityId], decide: Decide[S], done: str
    ) -> int:
        """What a timer does: ``run`` ``decide`` on each entity a read model named
        as due (the entity's own log decides whether it is), then log ``done``
        with how many there were, if any. Returns that number."""
        for entity_id in entity_ids:
            self.run(aggregate, entity_id, decide)
        if entity_ids:
            log.info(done, entities=len(entity_ids), aggregate=aggregate.name)
        return len(entity_ids)

    def create(
        self, aggregate: Aggregate[S], entity_id: EntityId, events: Sequence[EventSpec]
    ) -> S:
        """Start a new entity's stream with ``events``; :class:`StaleState` if
        it exists already (a retry of this request finds its own events instead,
        by their ids). Returns the new entity's state."""
        self.record(aggregate.stream_for(entity_id), events, StreamState.NO_STREAM)
        return self.get(aggregate, entity_id)

    # -- the same on a stream named directly (tools, tests) --------------------------

    def state(
        self, stream: str, evolve: Callable[[S, DecodedEvent], S], initial: S
    ) -> tuple[S, int | None]:
        return self._fold(stream, evolve, lambda: initial)

    def execute(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        initial: S,
        decide: Decide[S],
        attempts: int = ATTEMPTS,
    ) -> tuple[S, AppendResult | None]:
        """Run a command against a stream; returns the state it decided on."""
        return self._execute(stream, evolve, lambda: initial, decide, attempts)

    def command(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        initial: S,
        decide: Decide[S],
    ) -> S:
        """Run a command; return the stream's state after it."""
        state, result = self.execute(stream, evolve, initial, decide)
        return self._after(stream, evolve, state, result)

    # -- inside ----------------------------------------------------------------------

    def _fold(
        self, stream: str, evolve: Callable[[S, DecodedEvent], S], initial: Callable[[], S]
    ) -> tuple[S, int | None]:
        events, revision = self.load(stream)
        state = initial()
        for event in events:
            state = evolve(state, event)
        return state, revision

    def _execute(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        initial: Callable[[], S],
        decide: Decide[S],
        attempts: int,
    ) -> tuple[S, AppendResult | None]:
        for _ in range(attempts):
            recorded, revision = self.load(stream)
            state = initial()
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

    def _after(
        self,
        stream: str,
        evolve: Callable[[S, DecodedEvent], S],
        state: S,
        result: AppendResult | None,
    ) -> S:
        """The state a command decided on, with the command's own events folded
        in (read back from its first revision on, not the whole stream again)."""
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


class EventLog(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects a :class:`ServiceEventLog` bound to the worker's request context."""

    def setup(self) -> None:
        self.store = shared_event_store(
            event_store_url_for(self.container), settings().event_store_timeout
        )

    def get_dependency(self, worker_ctx: Any) -> ServiceEventLog:
        return ServiceEventLog(self.store, worker_context(worker_ctx, self.container.service_name))
