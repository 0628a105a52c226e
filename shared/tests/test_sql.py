"""A process's connections to one database: one bounded pool for its reads and writes."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
import sqlalchemy as sa

from shared.config import settings
from shared.projection import single_active
from shared.sql import (
    SessionLocks,
    create_sql_engine,
    ping,
    shared_engine,
    shared_reader,
    write_transaction,
)

pytestmark = pytest.mark.integration


def test_reads_wait_for_the_pool_that_writes_use(fresh_pg: str) -> None:
    writer, reader = shared_engine(fresh_pg), shared_reader(fresh_pg)
    held = [writer.connect() for _ in range(settings().db_pool_size)]
    done = threading.Event()

    def read() -> None:
        with reader.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        done.set()

    worker = threading.Thread(target=read)
    worker.start()
    assert not done.wait(0.5), "the read opened a connection beyond the pool"
    held.pop().close()
    assert done.wait(5)
    worker.join()
    for conn in held:
        conn.close()


def test_a_read_in_autocommit_leaves_writes_atomic(fresh_pg: str) -> None:
    writer, reader = shared_engine(fresh_pg), shared_reader(fresh_pg)
    with write_transaction(writer) as conn:
        conn.execute(sa.text("CREATE TABLE notes (n int)"))
    with reader.connect() as conn:  # a single statement: no transaction to commit
        conn.execute(sa.text("INSERT INTO notes VALUES (1)"))
    for _ in range(settings().db_pool_size):  # whichever connection the read used
        with pytest.raises(RuntimeError), write_transaction(writer) as conn:
            conn.execute(sa.text("INSERT INTO notes VALUES (2)"))
            raise RuntimeError("abandoned")
    with writer.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM notes")).scalars().all() == [1]


def test_locks_held_for_good_leave_the_pool_to_their_holders_work(fresh_pg: str) -> None:
    """Three single-active projections on a pool of one: each still gets the
    pool's connection to work, and each lock stays exclusive, in this
    process as in another."""
    engine = create_sql_engine(fresh_pg, pool_size=1)
    other_process = create_sql_engine(fresh_pg, pool_size=1)
    with ExitStack() as held:
        for name in ("a", "b", "c"):
            assert held.enter_context(single_active(engine, name, lambda: False))
        with write_transaction(engine) as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        for holder in (engine, other_process):
            with single_active(holder, "a", lambda: False, wait=False) as leader:
                assert not leader
    with single_active(other_process, "a", lambda: False, wait=False) as leader:
        assert leader
    engine.dispose()
    other_process.dispose()


def test_a_wait_for_a_busy_pool_is_bounded_and_a_probe_does_not_wait(fresh_pg: str) -> None:
    """With every pooled connection busy, a worker gives up after the pool
    timeout (a 503 at the gateway), and a health probe answers at once on a
    connection of its own."""
    engine = create_sql_engine(fresh_pg, pool_size=1, pool_timeout=0.5)
    with engine.connect():
        started = time.monotonic()
        ping(engine)
        assert time.monotonic() - started < 0.5
        with pytest.raises(sa.exc.TimeoutError):
            engine.connect()
        assert time.monotonic() - started < 3
    engine.dispose()
    default = create_sql_engine(fresh_pg)
    assert default.pool.timeout() == settings().db_pool_timeout_seconds  # type: ignore[attr-defined]
    default.dispose()


def test_advisory_locks_come_back_after_their_connection_broke_and_a_reconnect_failed(
    fresh_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the locks' session, and the database is still away
    at the first try to reconnect: a later try gets a new session, in which
    the locks can be taken again."""
    engine = create_sql_engine(fresh_pg, pool_size=1)
    locks = SessionLocks(engine)
    assert locks.try_lock(1)
    conn = locks._conn
    assert conn is not None
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(sa.exc.OperationalError):
        locks.try_lock(2)  # finds the session gone
    connect = locks._engine.connect

    def away() -> sa.Connection:
        raise sa.exc.OperationalError("connect", {}, Exception("the database is away"))

    monkeypatch.setattr(locks._engine, "connect", away)
    with pytest.raises(sa.exc.OperationalError):
        locks.try_lock(2)
    monkeypatch.setattr(locks._engine, "connect", connect)
    assert locks.try_lock(2)
    assert locks.try_lock(1)  # the server released it with the old session
    other = SessionLocks(engine)
    assert not other.try_lock(1)
    engine.dispose()
