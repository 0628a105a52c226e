"""The idempotency store on both of the gateway's databases: one contract,
subclassed per dialect (SQLite: the embedded default; PostgreSQL: production).

A "gateway" here is a store of its own on the shared database, as each gateway
process has; it "dies" as a process does, without ending its attempts.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.idempotency import IdempotencyStore, StoredAnswer, metadata, request_fingerprint
from shared.database import create_schema
from shared.errors import Conflict, InvalidInput
from shared.sql import create_sql_engine

DAY = timedelta(hours=24)
CREATED = StoredAnswer(201, "application/json", b'{"id": 1}')
SCOPE, KEY = "user-1", "key-1"

Gateway = Callable[..., IdempotencyStore]


class IdempotencyStoreContract(abc.ABC):
    """Every test here runs on every dialect; a dialect's class gives the
    ``url`` fixture of its database and how its holder dies."""

    @abc.abstractmethod
    def die(self, store: IdempotencyStore) -> None:
        """The process holding ``store`` is killed: nothing of it runs again."""

    @pytest.fixture
    def engine(self, url: str) -> Iterator[sa.Engine]:
        engine = create_sql_engine(url)
        create_schema(engine, metadata)
        yield engine
        engine.dispose()

    @pytest.fixture
    def gateway(self, engine: sa.Engine) -> Iterator[Gateway]:
        stores: list[IdempotencyStore] = []

        def start(ttl: timedelta = DAY) -> IdempotencyStore:
            stores.append(IdempotencyStore(engine, ttl, concurrency=4))
            return stores[-1]

        yield start
        for store in stores:
            store.close()

    @pytest.fixture
    def store(self, gateway: Gateway) -> IdempotencyStore:
        return gateway()

    def test_the_first_request_goes_ahead_and_a_retry_gets_its_answer(
        self, store: IdempotencyStore
    ):
        assert store.begin(SCOPE, KEY, "print") is None
        store.complete(SCOPE, KEY, CREATED)
        assert store.begin(SCOPE, KEY, "print") == CREATED
        assert store.begin("user-2", KEY, "print") is None  # keys are per scope

    def test_the_key_with_a_different_request_is_refused(self, store: IdempotencyStore):
        assert store.begin(SCOPE, KEY, "print") is None
        with pytest.raises(InvalidInput, match="different request"):
            store.begin(SCOPE, KEY, "other")
        store.complete(SCOPE, KEY, CREATED)
        with pytest.raises(InvalidInput, match="different request"):
            store.begin(SCOPE, KEY, "other")

    def test_a_second_attempt_while_the_first_runs_is_a_conflict(self, store: IdempotencyStore):
        assert store.begin(SCOPE, KEY, "print") is None
        with pytest.raises(Conflict, match="in progress"):
            store.begin(SCOPE, KEY, "print")
        store.complete(SCOPE, KEY, CREATED)
        assert store.begin(SCOPE, KEY, "print") == CREATED

    def test_an_abandoned_attempt_leaves_nothing_and_the_retry_runs_anew(
        self, store: IdempotencyStore
    ):
        """What a 5xx, a streamed answer or an exception does (gateway.endpoint)."""
        assert store.begin(SCOPE, KEY, "print") is None
        store.abandon(SCOPE, KEY)
        assert store.begin(SCOPE, KEY, "other") is None

    def test_an_answer_older_than_the_ttl_is_forgotten(self, gateway: Gateway):
        store = gateway(ttl=timedelta(0))
        assert store.begin(SCOPE, KEY, "print") is None
        store.complete(SCOPE, KEY, CREATED)
        assert store.begin(SCOPE, KEY, "other") is None

    def test_a_key_whose_gateway_died_is_taken_over_at_once(self, gateway: Gateway):
        first = gateway()
        assert first.begin(SCOPE, KEY, "print") is None
        self.die(first)
        restarted = gateway()
        assert restarted.begin(SCOPE, KEY, "print") is None
        with pytest.raises(Conflict):  # and now it is the live attempt's
            restarted.begin(SCOPE, KEY, "print")
        restarted.complete(SCOPE, KEY, CREATED)
        assert restarted.begin(SCOPE, KEY, "print") == CREATED

    def test_a_dead_attempt_with_a_different_request_is_not_taken_over(self, gateway: Gateway):
        """Its services may have recorded entities with ids derived from the key."""
        first = gateway()
        assert first.begin(SCOPE, KEY, "print") is None
        self.die(first)
        with pytest.raises(InvalidInput, match="different request"):
            gateway().begin(SCOPE, KEY, "other")

    def test_a_taken_over_attempt_cannot_overwrite_its_successor(self, gateway: Gateway):
        first = gateway()
        assert first.begin(SCOPE, KEY, "print") is None
        self.die(first)
        second = gateway()
        assert second.begin(SCOPE, KEY, "print") is None
        with contextlib.suppress(sa.exc.DBAPIError):  # its connection may be gone
            first.complete(SCOPE, KEY, StoredAnswer(201, "text/plain", b"late"))
        with pytest.raises(Conflict):
            second.begin(SCOPE, KEY, "print")
        second.complete(SCOPE, KEY, CREATED)
        with contextlib.suppress(sa.exc.DBAPIError):
            first.abandon(SCOPE, KEY)
        assert second.begin(SCOPE, KEY, "print") == CREATED

    def test_the_lock_is_released_when_storing_the_answer_fails(self, store: IdempotencyStore):
        assert store.begin(SCOPE, KEY, "print") is None

        def fail_updates(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith("UPDATE idempotency_keys"):
                raise RuntimeError("the database went away")

        writes = store.locks.engine  # type: ignore[attr-defined]
        sa.event.listen(writes, "before_cursor_execute", fail_updates)
        try:
            with pytest.raises(RuntimeError):
                store.complete(SCOPE, KEY, CREATED)
        finally:
            sa.event.remove(writes, "before_cursor_execute", fail_updates)
        assert store.begin(SCOPE, KEY, "print") is None  # pending, unlocked: taken over

    def test_a_worker_leaves_no_lock_behind_and_only_its_own(self, store: IdempotencyStore):
        """Whatever way a request ends, its worker's teardown releases its keys."""
        other = threading.Thread(target=store.begin, args=(SCOPE, "other-key", "print"))
        other.start()
        other.join()
        assert store.begin(SCOPE, KEY, "print") is None
        store.release_strays()
        assert store.begin(SCOPE, KEY, "print") is None
        with pytest.raises(Conflict):
            store.begin(SCOPE, "other-key", "print")


class TestSqliteIdempotencyStore(IdempotencyStoreContract):
    """One gateway process per SQLite file: a restarted gateway holds no lock."""

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'gateway.sqlite'}"

    def die(self, store: IdempotencyStore) -> None:
        pass


@pytest.mark.integration
class TestPostgresIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    def url(self, fresh_pg: str) -> str:
        return fresh_pg

    def die(self, store: IdempotencyStore) -> None:
        """PostgreSQL ends the dead process's sessions, and their locks go with them."""
        with store.engine.connect() as conn:
            conn.execute(
                sa.text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE {IN_THIS_DATABASE}"
                    " AND pid <> pg_backend_pid()"
                )
            )
            conn.commit()
        wait_for_no_advisory_locks(store.engine)

    def test_a_live_attempt_in_another_gateway_is_a_conflict(self, gateway: Gateway):
        first, second = gateway(), gateway()
        assert first.begin(SCOPE, KEY, "print") is None
        with pytest.raises(Conflict, match="in progress"):
            second.begin(SCOPE, KEY, "print")
        first.complete(SCOPE, KEY, CREATED)
        assert second.begin(SCOPE, KEY, "print") == CREATED

    def test_no_lock_goes_back_to_the_pool_with_its_connection(self, store: IdempotencyStore):
        assert store.begin(SCOPE, KEY, "print") is None
        assert advisory_locks(store.engine) == 1
        with pytest.raises(Conflict):
            store.begin(SCOPE, KEY, "print")
        store.complete(SCOPE, KEY, CREATED)
        assert store.begin(SCOPE, KEY, "print") == CREATED
        assert store.begin(SCOPE, "key-2", "print") is None
        store.abandon(SCOPE, "key-2")
        assert store.begin(SCOPE, "key-3", "print") is None
        store.release_strays()
        assert advisory_locks(store.engine) == 0

    def test_a_gateway_killed_with_sigkill_loses_its_key_at_once(
        self, url: str, store: IdempotencyStore
    ):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, SCOPE, KEY],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "holding"
            with pytest.raises(Conflict, match="in progress"):
                store.begin(SCOPE, KEY, "print")
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            killed = time.monotonic()
            while True:
                try:
                    assert store.begin(SCOPE, KEY, "print") is None
                    break
                except Conflict:
                    assert time.monotonic() - killed < 1.0, "the dead holder's key is still held"
                    time.sleep(0.01)
            print(f"taken over {time.monotonic() - killed:.3f}s after the SIGKILL")
        finally:
            holder.kill()
            holder.wait(timeout=10)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    from gateway.idempotency import IdempotencyStore
    from shared.sql import create_sql_engine

    url, scope, key = sys.argv[1:]
    store = IdempotencyStore(create_sql_engine(url), timedelta(hours=24), concurrency=1)
    assert store.begin(scope, key, "print") is None
    print("holding", flush=True)
    time.sleep(120)
    """
)


# pg_locks shows the whole server's locks: only this test's database is ours.
IN_THIS_DATABASE = (
    "locktype = 'advisory'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def advisory_locks(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM pg_locks WHERE {IN_THIS_DATABASE}")
            ).scalar_one()
        )


def wait_for_no_advisory_locks(engine: sa.Engine, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while advisory_locks(engine):
        assert time.monotonic() < deadline, "a terminated session still holds its lock"
        time.sleep(0.01)


def multipart(boundary: str, parts: list[tuple[str, bytes]]) -> Request:
    body = (
        b"".join(
            b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\n%s\r\n"
            % (boundary.encode(), disposition.encode(), content)
            for disposition, content in parts
        )
        + b"--%s--\r\n" % boundary.encode()
    )
    environ = EnvironBuilder(
        method="POST",
        path="/api/v1/files",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    ).get_environ()
    return Request(environ)


def test_a_multipart_request_is_known_by_its_parts_not_its_boundary():
    upload = [('name="purpose"', b"portfolio"), ('name="file"; filename="a.png"', b"PNG")]
    first, again = multipart("one", upload), multipart("two", upload)
    assert request_fingerprint(first) == request_fingerprint(again)
    other = multipart("one", [upload[0], ('name="file"; filename="a.png"', b"JPG")])
    assert request_fingerprint(other) != request_fingerprint(first)
    # A part with no name the parser can read (the fuzzer found it: a 500).
    hostile = multipart("one", [('name="\\"', b"[1]"), *upload])
    assert request_fingerprint(hostile) != request_fingerprint(first)
