"""The contract on the SQL backends: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.eventstore import NewEvent, StreamState, WrongExpectedRevision
from shared.eventstore.sql import NOTIFY_ALL, SqlEventStore, _PgListener
from shared.sql import write_transaction
from shared.tests.eventstore_contract import EventStoreContract, new, stream_name


@contextmanager
def slow_random_commits(store: SqlEventStore) -> Iterator[None]:
    """Hold each transaction open a random moment before it commits."""

    def before_commit(_conn: Any) -> None:
        time.sleep(random.random() * 0.02)

    sa.event.listen(store.engine, "commit", before_commit)
    try:
        yield
    finally:
        sa.event.remove(store.engine, "commit", before_commit)


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlEventStore]:
        store = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
        yield store
        store.close()

    @pytest.fixture
    def commit_jitter(self, store: SqlEventStore) -> Any:
        return slow_random_commits(store)


@pytest.mark.integration
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[SqlEventStore]:
        store = SqlEventStore(postgres_url)
        with store.engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE events, streams"))
        yield store
        store.close()

    @pytest.fixture
    def commit_jitter(self, store: SqlEventStore) -> Any:
        return slow_random_commits(store)

    def test_reader_never_passes_a_transaction_still_in_flight(self, store: SqlEventStore):
        """An append that took its position first but commits last must not
        be skipped: readers stop below it until it commits."""
        early, late = stream_name("gap"), stream_name("gap")
        early_event = new(n="early")
        with write_transaction(store.engine) as conn:
            store._append_in(conn, early, [early_event], StreamState.ANY)
            late_result = store.append(late, [new(n="late")])
            visible = [e.data["n"] for e in store.read_all(categories=["gap"])]
            assert visible == [], "a reader saw past an uncommitted earlier position"
            assert store.last_position() < late_result.position
        in_order = [e.data["n"] for e in store.read_all(categories=["gap"])]
        assert in_order == ["early", "late"]

    def test_positions_follow_transaction_order_not_commit_order(self, store: SqlEventStore):
        first = NewEvent("X", {}, new().metadata)
        with write_transaction(store.engine) as conn:
            held = store._append_in(conn, stream_name(), [first], StreamState.ANY)
            later = store.append(stream_name(), [new()])
        assert held.position < later.position

    def test_live_subscription_waits_for_an_earlier_transaction_in_flight(
        self, store: SqlEventStore
    ):
        """The live path reads the horizon first and remembers how far it
        scanned; it must still not scan past a transaction that may commit."""
        early, late = stream_name("live"), stream_name("live")
        subscription = store.subscribe(categories=["live"])
        try:
            assert subscription.next_batch(timeout=0.1) == []
            with write_transaction(store.engine) as conn:
                store._append_in(conn, early, [new(n="early")], StreamState.ANY)
                store.append(late, [new(n="late")])
                store.append(stream_name("other"), [new(n="elsewhere")])
                assert subscription.next_batch(timeout=0.3) == []
            seen: list[str] = []
            deadline = time.monotonic() + 5
            while len(seen) < 2 and time.monotonic() < deadline:
                seen += [e.data["n"] for e in subscription.next_batch(timeout=0.5)]
            assert seen == ["early", "late"]
        finally:
            subscription.stop()


@pytest.mark.integration
class TestPostgresConnectionBudget:
    """Reads and appends share one bounded pool; an append in autocommit hands
    its connection back ready for transactions."""

    @pytest.fixture
    def store(self, fresh_pg: str) -> Iterator[SqlEventStore]:
        store = SqlEventStore(fresh_pg, pool_size=1)
        yield store
        store.close()

    def test_an_append_waits_for_the_pools_one_connection(self, store: SqlEventStore):
        done = threading.Event()

        def append() -> None:
            store.append(stream_name("wait"), [new()])
            done.set()

        with store.engine.connect():  # the pool's only connection, held
            worker = threading.Thread(target=append)
            worker.start()
            assert not done.wait(0.5), "the append opened a connection beyond the pool"
        assert done.wait(5)
        worker.join()

    @pytest.mark.parametrize("append_fails", [False, True])
    def test_a_transaction_after_an_append_is_still_atomic(
        self, store: SqlEventStore, append_fails: bool
    ):
        taken = stream_name("taken")
        store.append(taken, [new()])
        expected = StreamState.NO_STREAM if append_fails else StreamState.ANY
        try:
            store.append(taken, [new()], expected)  # on the same, only connection
        except WrongExpectedRevision:
            assert append_fails
        rolled_back = stream_name("rolled")
        with pytest.raises(RuntimeError), write_transaction(store.engine) as conn:
            store._append_in(conn, rolled_back, [new()], StreamState.ANY)
            raise RuntimeError("abandoned")
        assert store.stream_revision(rolled_back) is None


def test_a_notification_wakes_only_the_subscribers_of_its_categories():
    listener = _PgListener.__new__(_PgListener)  # its wake-up table, without a connection
    listener._events, listener._lock = {}, threading.Lock()
    projects = listener.register(["project", "alert"])
    payments = listener.register(["escrow"])
    everything = listener.register(None)

    listener._wake(["contract,project"])
    assert (projects.is_set(), payments.is_set(), everything.is_set()) == (True, False, True)

    for event in (projects, everything):
        event.clear()
    listener._wake([NOTIFY_ALL])
    assert projects.is_set() and payments.is_set() and everything.is_set()
