"""Projections against real PostgreSQL: live processing equals a rebuild."""

from __future__ import annotations

import random
import threading
import time
import uuid
from contextlib import ExitStack
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.eventstore import EventStore
from shared.eventstore.sql import SqlEventStore
from shared.projection import Projection, ProjectionRunner, ProjectionWorker, single_active
from shared.schemas import PublishedEvent
from shared.sql import create_sql_engine
from tests.integration.helpers import thing, wait_until

pytestmark = pytest.mark.integration


class ThingTotals(Projection):
    """Per thing: how many events, their total, and the last amount seen
    (order-sensitive, so a replay in another order would show)."""

    name = "thing_totals"
    event_types = ("ThingHappened",)

    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            "thing_totals",
            self.metadata,
            sa.Column("thing_id", sa.String, primary_key=True),
            sa.Column("events", sa.Integer, nullable=False),
            sa.Column("total", sa.BigInteger, nullable=False),
            sa.Column("last_amount", sa.Integer, nullable=False),
            sa.Column("last_position", sa.BigInteger, nullable=False),
        )

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        t = self.table
        thing_id, amount = event.data["thing_id"], event.data["amount"]
        values = {"last_amount": amount, "last_position": event.position}
        updated = conn.execute(
            t.update()
            .where(t.c.thing_id == thing_id)
            .values(events=t.c.events + 1, total=t.c.total + amount, **values)
        )
        if updated.rowcount == 0:
            conn.execute(t.insert().values(thing_id=thing_id, events=1, total=amount, **values))


def snapshot(engine: sa.Engine, projection: ThingTotals) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(row) for row in conn.execute(sa.select(projection.table).order_by("thing_id"))
        ]


def write_concurrently(store: EventStore, writers: int = 8, appends: int = 40) -> None:
    things = [f"t{i}" for i in range(12)]

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(appends):
            batch = [thing(amount=rng.randint(-50, 500), thing_id=rng.choice(things))]
            store.append(f"thing-{rng.choice(things)}", batch)

    threads = [threading.Thread(target=write, args=(s,)) for s in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_rebuild_equals_live_processing(fresh_pg: str, postgres_server: str):
    from shared.testing import fresh_postgres_database

    store = SqlEventStore(fresh_pg)
    store.append("other-1", [thing(amount=1)])  # a category the projection ignores too
    live_engine = create_sql_engine(fresh_pg)
    projection = ThingTotals()
    live = ProjectionRunner(projection, store, live_engine, batch_size=7)
    live.prepare()
    stop = threading.Event()
    follower = threading.Thread(target=live.run, args=(stop.is_set, 0.1))
    follower.start()
    try:
        write_concurrently(store)
        # Sampled until equal: last_position() only counts what readers can
        # see now, and a transaction still in flight hides what follows it.
        wait_until(
            lambda: live.checkpoint() == store.last_position(), what="live projection caught up"
        )
        last = store.last_position()
    finally:
        stop.set()
        follower.join()
    live_rows = snapshot(live_engine, projection)
    assert sum(row[1] for row in live_rows) == 8 * 40 + 1

    with fresh_postgres_database(postgres_server) as scratch_url:
        scratch = create_sql_engine(scratch_url)
        rebuilt = ProjectionRunner(ThingTotals(), store, scratch, batch_size=100)
        assert rebuilt.rebuild() == 8 * 40 + 1
        assert snapshot(scratch, projection) == live_rows
        scratch.dispose()

    in_place = ProjectionRunner(ThingTotals(), store, live_engine)
    in_place.rebuild()
    assert snapshot(live_engine, projection) == live_rows
    assert in_place.checkpoint() == last
    store.close()


def test_changed_projection_version_rebuilds_on_start(fresh_pg: str):
    store = SqlEventStore(fresh_pg)
    engine = create_sql_engine(fresh_pg)
    for amount in (3, 4):
        store.append("thing-v", [thing(amount=amount, thing_id="v")])
    first = ProjectionRunner(ThingTotals(version=1), store, engine)
    first.prepare()
    first.catch_up()
    with engine.begin() as conn:  # damage the read model: only a rebuild repairs it
        conn.execute(sa.text("UPDATE thing_totals SET total = 0"))
    second = ProjectionRunner(ThingTotals(version=2), store, engine)
    second.prepare()
    assert second.checkpoint() is None
    second.catch_up()
    assert snapshot(engine, ThingTotals())[0][:3] == ("v", 2, 7)
    store.close()


class ProjectingService:
    name = "projecting"
    totals = ProjectionWorker(ThingTotals())


def test_projection_worker_keeps_the_read_model_current_in_a_service(
    fresh_pg: str, amqp_uri: str, container_factory: Any
):
    store = SqlEventStore(fresh_pg)
    container = container_factory(
        ProjectingService,
        {"AMQP_URI": amqp_uri, "DATABASE_URL": fresh_pg, "EVENT_STORE_URL": fresh_pg},
    )
    container.start()
    thing_id = uuid.uuid4().hex
    for amount in (10, 20, 30):
        store.append(f"thing-{thing_id}", [thing(amount=amount, thing_id=thing_id)])
    engine = create_sql_engine(fresh_pg)

    def total() -> Any:
        try:
            rows = [r for r in snapshot(engine, ThingTotals()) if r[0] == thing_id]
        except sa.exc.ProgrammingError:
            return None  # the worker has not created its table yet
        return rows and rows[0][2] == 60

    wait_until(total, what="worker applied all three events")
    container.stop()
    store.close()


def test_a_view_applied_elsewhere_has_its_tables_but_no_live_position_until_taken_over(
    fresh_pg: str, amqp_uri: str, container_factory: Any
):
    """Another replica holds the projection, so this one's thread waits: its
    reads must still find the tables (an empty view), not fail on a missing
    one, and it must not claim a position until it applies the view itself."""
    engine = create_sql_engine(fresh_pg)
    other_replica = ExitStack()
    assert other_replica.enter_context(
        single_active(engine, f"projection:{ThingTotals.name}", lambda: False, wait=False)
    )
    try:
        container = container_factory(
            ProjectingService,
            {"AMQP_URI": amqp_uri, "DATABASE_URL": fresh_pg, "EVENT_STORE_URL": fresh_pg},
        )
        container.start()
        assert snapshot(engine, ThingTotals()) == []
        worker = next(d for d in container.dependencies if isinstance(d, ProjectionWorker))
        handle = worker.get_dependency(None)
        # Applied elsewhere: no position of its own, so the gateway's response
        # cache does not keep answers read from this view here.
        time.sleep(0.5)
        assert handle.live_position is None
        other_replica.close()  # the other one leaves
        assert wait_until(lambda: handle.live_position == -1, what="following live, empty")
        store = SqlEventStore(fresh_pg)
        store.append(f"thing-{uuid.uuid4().hex}", [thing(amount=5)])
        recorded = wait_until(
            lambda: (handle.live_position or 0) > 0 and handle.live_position,
            what="the event applied",
        )
        assert recorded > 0 and snapshot(engine, ThingTotals())[0][2] == 5
        store.close()
        container.stop()
    finally:
        other_replica.close()
        engine.dispose()


def test_a_runner_following_live_remembers_its_last_events_and_says_when_it_cannot(
    fresh_pg: str,
):
    """What the response cache asks a view: which events it applied after a
    position it gave. Only while following live, and only as far back as it
    remembers; before that (or not following) it cannot tell."""
    store, engine = SqlEventStore(fresh_pg), create_sql_engine(fresh_pg)
    projection = ThingTotals()
    projection.remembers = 3
    runner = ProjectionRunner(projection, store, engine, batch_size=2)
    store.append("thing-early", [thing(amount=1, thing_id="early")])  # caught up, not live
    assert runner.status.applied_since(0) is None
    stop = threading.Event()
    following = threading.Thread(target=runner.run, args=(stop.is_set, 0.05))
    following.start()
    try:
        wait_until(lambda: runner.status.running, what="following live")
        start = runner.status.position
        assert start is not None and runner.status.applied_since(start) == []
        assert runner.status.applied_since(start - 1) is None  # applied before following
        positions = [
            store.append("thing-live", [thing(amount=n, thing_id="live")]).position
            for n in (10, 20, 30, 40, 50)
        ]
        wait_until(lambda: runner.status.position == positions[-1], what="all five applied")
        since = runner.status.applied_since(positions[1])
        assert since is not None
        assert [e.position for e in since] == positions[2:]
        assert [e.data["amount"] for e in since] == [30, 40, 50]
        assert runner.status.applied_since(positions[-1]) == []
        assert runner.status.applied_since(positions[0]) is None  # forgotten: only 3 kept
    finally:
        stop.set()
        following.join(timeout=10)
    assert runner.status.applied_since(positions[-1]) is None  # no longer following
    store.close()
    engine.dispose()
