"""The contract on the SQL backends: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.eventstore import NewEvent, StreamState
from shared.eventstore.sql import SqlEventStore, write_transaction
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
