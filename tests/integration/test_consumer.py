"""Consumers against real RabbitMQ and PostgreSQL, in a real Nameko container."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from kombu import Connection

from shared import consumer
from shared.consumer import ATTEMPTS_HEADER, ERROR_HEADER, decode_message, event_handler, learns
from shared.database import ReadModelDatabase
from shared.eventstore import RecordedEvent
from shared.facts import LearnedFacts
from shared.relay import AmqpPublisher
from shared.schemas import registry
from tests.integration.helpers import SOURCE, thing, wait_until

pytestmark = pytest.mark.integration

tables = sa.MetaData()
totals = sa.Table(
    "totals",
    tables,
    sa.Column("thing_id", sa.String, primary_key=True),
    sa.Column("amount", sa.Integer, nullable=False),
)

attempts: Counter[str] = Counter()


class CountingService:
    """Adds each ThingHappened amount to a total, once per event; fails on
    purpose for amounts that ask it to."""

    name = "counting"
    db = ReadModelDatabase(tables)

    @event_handler(SOURCE, "ThingHappened")
    def on_thing(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        attempts[str(event.event_id)] += 1
        amount = event.data["amount"]
        if amount < 0:
            raise ValueError("negative amounts are refused")
        if amount == 13 and attempts[str(event.event_id)] < 3:
            raise RuntimeError("transient failure")

        def add(conn: sa.Connection) -> None:
            thing_id = event.data["thing_id"]
            updated = conn.execute(
                totals.update()
                .where(totals.c.thing_id == thing_id)
                .values(amount=totals.c.amount + amount)
            )
            if updated.rowcount == 0:
                conn.execute(totals.insert().values(thing_id=thing_id, amount=amount))

        self.db.handle_once("counting.on_thing", event.event_id, add)


def recorded(amount: int, thing_id: str) -> RecordedEvent:
    event = thing(amount=amount, thing_id=thing_id)
    return RecordedEvent(
        event_id=event.event_id,
        type=event.type,
        schema_version=1,
        data=event.data,
        metadata=event.metadata,
        stream=f"thing-{thing_id}",
        revision=0,
        position=1,
        recorded_at=datetime.now(UTC),
    )


@pytest.fixture
def service(fresh_pg: str, amqp_uri: str, container_factory: Any) -> Any:
    attempts.clear()
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": fresh_pg,
        "CONSUMER_MAX_RETRIES": 2,
        "CONSUMER_RETRY_DELAY_MS": 100,
    }
    container = container_factory(CountingService, config)
    container.start()
    yield container
    delete_queues(amqp_uri, "evt-testsrc-ThingHappened--counting.on_thing")


def delete_queues(amqp_uri: str, queue: str) -> None:
    """A handler's queue and its retry and dead-letter queues."""
    with Connection(amqp_uri) as conn:
        for name in (queue, f"{queue}.delay", f"{queue}.dead"):
            conn.default_channel.queue_delete(name)


def total(url: str, thing_id: str) -> int | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(totals.c.amount).where(totals.c.thing_id == thing_id)
        ).scalar()
    engine.dispose()
    return value


def test_a_redelivered_event_changes_nothing(service: Any, fresh_pg: str, amqp_uri: str):
    publisher = AmqpPublisher(amqp_uri)
    event = recorded(5, "a")
    for _ in range(3):
        publisher.publish(event)
    publisher.publish(recorded(2, "a"))
    publisher.close()
    wait_until(lambda: total(fresh_pg, "a") == 7, what="both events applied")
    wait_until(lambda: attempts[str(event.event_id)] == 3, what="all three deliveries")
    assert total(fresh_pg, "a") == 7


def test_a_failing_handler_is_retried_until_it_succeeds(service: Any, fresh_pg: str, amqp_uri: str):
    publisher = AmqpPublisher(amqp_uri)
    event = recorded(13, "b")
    publisher.publish(event)
    publisher.close()
    wait_until(lambda: total(fresh_pg, "b") == 13, what="applied after retries")
    assert attempts[str(event.event_id)] == 3


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(
    service: Any, fresh_pg: str, amqp_uri: str
):
    publisher = AmqpPublisher(amqp_uri)
    event = recorded(-1, "c")
    publisher.publish(event)
    publisher.close()
    dead_queue = "evt-testsrc-ThingHappened--counting.on_thing.dead"

    def dead_message() -> Any:
        with Connection(amqp_uri) as conn:
            return conn.SimpleQueue(dead_queue).get(block=False) if _has(conn, dead_queue) else None

    message = wait_until(_catching(dead_message), timeout=20, what="message dead-lettered")
    assert message.properties["message_id"] == str(event.event_id)
    assert message.headers[ATTEMPTS_HEADER] == 3
    assert "negative amounts are refused" in message.headers[ERROR_HEADER]
    assert attempts[str(event.event_id)] == 3
    assert total(fresh_pg, "c") is None


def _has(conn: Connection, queue: str) -> bool:
    _, count, _ = conn.default_channel.queue_declare(queue, passive=True)
    return count > 0


def _count(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue, passive=True)
    return int(count)


def _catching(fn: Any) -> Any:
    def call() -> Any:
        try:
            return fn()
        except Exception:
            return None

    return call


def test_same_event_processed_concurrently_is_applied_once(fresh_pg: str):
    """Two deliveries racing each other: the primary key serialises them."""
    import threading

    from shared.database import Database, create_schema
    from shared.sql import create_sql_engine

    db = Database(create_sql_engine(fresh_pg))
    create_schema(db.engine, tables)
    event_id = uuid.uuid4()
    results: list[bool] = []

    def effect(conn: sa.Connection) -> None:
        conn.execute(totals.insert().values(thing_id=f"race-{uuid.uuid4()}", amount=1))

    def deliver() -> None:
        applied, _ = db.handle_once("race", event_id, effect)
        results.append(applied)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True]
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(totals)).scalar() == 1


# -- a handler that only learns: deliveries in batches ---------------------------------

batches: list[list[str]] = []
"""The thing ids of each list the learning handler was given."""


class LearningService:
    """Keeps what it hears, as every service keeps other services' facts."""

    name = "learning"
    facts = LearnedFacts()

    @learns(SOURCE, "ThingHappened")
    def learn(self, payloads: list[dict[str, Any]]) -> None:
        batches.append([p["data"]["thing_id"] for p in payloads])
        self.facts.learn_all(payloads)


def learned(url: str) -> Counter[str]:
    """How often each event id was kept."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT event_id FROM learned_events")).scalars().all()
    engine.dispose()
    return Counter(str(i) for i in ids)


def test_a_learning_handler_keeps_a_batch_in_one_go_and_parks_a_bad_message_alone(
    fresh_pg: str, amqp_uri: str, container_factory: Any, monkeypatch: pytest.MonkeyPatch
):
    batches.clear()
    # (a wide window: the first ten waiting deliveries are one batch however
    # slowly they arrive on a busy machine)
    monkeypatch.setattr(consumer, "BATCH_WINDOW_SECONDS", 0.2)
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": fresh_pg,
        "CONSUMER_MAX_RETRIES": 1,
        "CONSUMER_RETRY_DELAY_MS": 100,
    }
    queue = "evt-testsrc-ThingHappened--learning.learn"
    delete_queues(amqp_uri, queue)  # (anything an earlier run left)
    declaring = container_factory(LearningService, config)
    declaring.start()  # its queue, so that what is published now waits there
    declaring.stop()
    events = [recorded(n, f"t{n}") for n in range(40)]
    bad = recorded(99, "bad")
    envelope = registry.publish(bad)
    assert envelope is not None
    envelope["data"]["amount"] = "lots"  # signed by the relay, but not what the schema says
    publisher = AmqpPublisher(amqp_uri)
    for event in events[:4]:
        publisher.publish(event)
    publisher.publish(bad, body=orjson.dumps(envelope))  # (in the first batch)
    publisher.publish(events[3])  # redelivered at once, beside its first delivery
    for event in [*events[4:], events[0], events[1]]:  # and two later
        publisher.publish(event)
    publisher.close()
    learning = container_factory(LearningService, config)
    try:
        learning.start()
        wait_until(lambda: len(learned(fresh_pg)) == 40, what="every good event kept")

        def dead_message() -> Any:
            with Connection(amqp_uri) as conn:
                return conn.SimpleQueue(f"{queue}.dead").get(block=False)

        message = wait_until(_catching(dead_message), what="the bad message parked")
        assert message.properties["message_id"] == str(bad.event_id)
        assert "amount" in message.headers[ERROR_HEADER]
        wait_until(
            lambda: _count(amqp_uri, queue) == _count(amqp_uri, f"{queue}.delay") == 0,
            what="nothing left to handle",
        )
        time.sleep(0.5)  # (past the retry delay: anything on its way there has arrived)
        # (the look above did not take it: it went back at the connection's close)
        assert _count(amqp_uri, f"{queue}.dead") == 1  # it alone
        assert set(learned(fresh_pg)) == {str(e.event_id) for e in events}
        first = next(b for b in batches if "bad" in b)
        assert len(first) > 1, batches  # it came in a batch with the good ones,
        assert ["bad"] in batches  # which was handled again one by one
        assert next(b for b in batches if "t0" in b) == first  # (t0 was kept then)
    finally:
        learning.stop()  # (a running consumer would declare its queue again)
        delete_queues(amqp_uri, queue)


def test_learning_the_same_event_twice_at_once_keeps_it_once(fresh_pg: str, tmp_path: Any):
    from shared.database import Database, create_schema
    from shared.facts import Facts, facts_metadata
    from shared.sql import create_sql_engine

    for url in (fresh_pg, f"sqlite:///{tmp_path / 'facts.sqlite'}"):
        db = Database(create_sql_engine(url))
        create_schema(db.engine, facts_metadata)
        facts = Facts(db, "learning")
        x, y = recorded(1, "x"), recorded(2, "y")
        one, other = registry.publish(x), registry.publish(y)
        assert one is not None and other is not None
        facts.learn_all([one, other, one])
        facts.learn_all([other])
        with db.engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT event_id FROM learned_events")).scalars().all()
        assert sorted(str(uuid.UUID(str(i))) for i in ids) == sorted(
            [str(x.event_id), str(y.event_id)]
        )
        assert [e.data["thing_id"] for e in facts.events(SOURCE, "x")] == ["x"]
        db.engine.dispose()
