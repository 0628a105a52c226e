"""What a service knows of other services' entities, learned from their published events.

A service never reads another service's streams or tables. It subscribes
(through RabbitMQ) to the published events it needs and keeps each one here,
in its own read-model database, under the entity the event is about (its
source and ``subject``). What it needs to know (is the project open, what
does the contract say) is a pure fold of those events in the owner's log
order (their positions): a message redelivered changes nothing (it is kept
once, under the event's id), and one that arrives
late, after a retry, takes its place in that order when the fold is next read.

What is known this way can lag the owner by the time a message takes to
arrive. Where a decision depends on it, the command waits a little for the
fact to arrive (:meth:`Facts.await_fold`), and the owner of the truth checks
again when it hears of the decision (see README, "How services learn of each
other").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from nameko.extensions import DependencyProvider

from shared.database import Database, create_schema, database_url_for
from shared.errors import Unavailable
from shared.schemas import EventRegistry, PublishedEvent, registry
from shared.sql import insert_for, shared_engine

S = TypeVar("S")
Evolve = Callable[[S, PublishedEvent], S]

FACTS_WAIT_SECONDS = 3.0
"""How long a command waits for a fact it needs to arrive from its owner."""

facts_metadata = sa.MetaData()

learned_events = sa.Table(
    "learned_events",
    facts_metadata,
    sa.Column("consumer", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Index("ix_learned_events_subject", "consumer", "source", "subject", "position"),
)


def _keep_once(dialect: str) -> Any:
    """The insert of learned events that skips one kept already, executed with
    the rows as parameters: SQLAlchemy sends them as one multi-row statement
    ("insertmanyvalues") and compiles it once per process, where a statement
    built with ``.values(rows)`` is compiled again for every batch (it has no
    cache key; a py-spy profile of the bench's posts found 7-8% of contracts'
    and bidding's samples in the compiler)."""
    return insert_for(dialect)(learned_events).on_conflict_do_nothing(
        index_elements=[learned_events.c.consumer, learned_events.c.event_id]
    )


class Facts:
    """One service's store of the published events it learned."""

    def __init__(
        self,
        db: Database,
        consumer: str,
        schemas: EventRegistry = registry,
        wait_seconds: float = FACTS_WAIT_SECONDS,
    ) -> None:
        self.db = db
        self.consumer = consumer
        self.schemas = schemas
        self.wait_seconds = wait_seconds

    def learn(self, payload: Mapping[str, Any]) -> PublishedEvent:
        """Validate a published envelope and keep it (once)."""
        return self.learn_all([payload])[0]

    def learn_all(self, payloads: Sequence[Mapping[str, Any]]) -> list[PublishedEvent]:
        """Validate published envelopes and keep each once, all in one
        transaction (the deliveries of :func:`shared.consumer.learns`). One
        invalid envelope raises and keeps none: the consumer then hands them
        over one at a time."""
        events = [self.schemas.decode_published(payload) for payload in payloads]
        rows = {
            event.event_id: {
                "consumer": self.consumer,
                "event_id": event.event_id,
                "source": event.source,
                "subject": event.subject,
                "position": event.position,
                "event_type": event.type,
                "envelope": orjson.dumps(dict(payload)),
            }
            for event, payload in zip(events, payloads, strict=True)
        }
        if rows:
            with self.db.transaction() as conn:
                # One statement of many rows, in key order, so that two
                # batches sharing redelivered events lock them in the same
                # order. A redelivered event is already here: its key is the
                # event's id.
                conn.execute(_keep_once(conn.dialect.name), [rows[k] for k in sorted(rows)])
        return events

    def erase(self, person_id: str) -> int:
        """Scrub a person's fields from every event kept here, as the relay
        would publish them now that their keys are gone (``PersonalDataErased``).
        Returns how many were changed."""
        t = learned_events.c
        changed = 0
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(t.event_id, t.envelope).where(
                    t.consumer == self.consumer, t.event_type.in_(self.schemas.personal_types())
                )
            ).all()
            for row in rows:
                envelope = orjson.loads(row.envelope)
                erased = self.schemas.erase_published(envelope, person_id)
                if erased != envelope:
                    conn.execute(
                        learned_events.update()
                        .where(t.consumer == self.consumer, t.event_id == row.event_id)
                        .values(envelope=orjson.dumps(erased))
                    )
                    changed += 1
        return changed

    def events(self, source: str, subject: str) -> list[PublishedEvent]:
        """What is known of one entity, in its owner's log order."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(learned_events.c.envelope)
                .where(
                    learned_events.c.consumer == self.consumer,
                    learned_events.c.source == source,
                    learned_events.c.subject == subject,
                )
                .order_by(learned_events.c.position)
            ).all()
        return [self.schemas.decode_published(orjson.loads(r.envelope)) for r in rows]

    def fold(self, source: str, subject: str, evolve: Evolve[S], initial: S) -> S:
        state = initial
        for event in self.events(source, subject):
            state = evolve(state, event)
        return state

    def await_fold(
        self,
        source: str,
        subject: str,
        evolve: Evolve[S],
        initial: S,
        ready: Callable[[S], bool],
        timeout: float | None = None,
    ) -> S:
        """The fold, once ``ready`` says it holds what the caller needs, or as
        it stands after ``timeout`` (the caller then says what is missing)."""
        deadline = time.monotonic() + (self.wait_seconds if timeout is None else timeout)
        while True:
            state = self.fold(source, subject, evolve, initial)
            if ready(state) or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)  # cooperative under eventlet's monkey patch

    def require(
        self,
        source: str,
        subject: str,
        evolve: Evolve[S],
        initial: S,
        known: Callable[[S], bool],
        what: str,
    ) -> S:
        """The fold once ``known`` holds; a retryable 503 if it has not arrived
        in time. (The gateway answers 404 for what its own views have never
        seen, so what is missing here is on its way.)"""
        state = self.await_fold(source, subject, evolve, initial, known)
        if not known(state):
            raise Unavailable(
                f"the {what} is not known here yet; retry in a moment",
                {"reason": "not_yet_known", what: subject},
            )
        return state


class LearnedFacts(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects the service's :class:`Facts`; creates its table at start-up."""

    def setup(self) -> None:
        engine = shared_engine(database_url_for(self.container))
        create_schema(engine, facts_metadata)
        self.facts = Facts(Database(engine), self.container.service_name)

    def get_dependency(self, worker_ctx: Any) -> Facts:
        return self.facts
