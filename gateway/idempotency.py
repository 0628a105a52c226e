"""``Idempotency-Key``: a retried POST gets the first attempt's answer.

The first request with a key records it as pending, runs, and stores its
answer; a repeat within the TTL (``IDEMPOTENCY_TTL_HOURS``, 24 by default)
gets that answer replayed. The same key with a different request is a 422.
Answers with a 5xx status are not stored, so the client's retry runs anew.

An attempt holds its key's lock from ``begin`` until ``complete`` or
``abandon``, and the lock lives no longer than the gateway process holding it.
A repeat that finds the lock held is a 409 (the first attempt is still
running). A pending record whose lock nobody holds belongs to an attempt that
died with its gateway (killed mid-request): the retry takes the key over at
once, rather than waiting out a timeout longer than any request. Only the
same request takes it over: another with the key is a 422, as while the first
ran (its services may have recorded what the key's ids name).

* PostgreSQL: a session-level advisory lock, taken on a connection the
  attempt keeps to itself until it ends (a pool of its own, one connection per
  worker). When a gateway dies, PostgreSQL ends its sessions and their locks.
  Keepalives on these connections bound how long a gateway that vanished
  without closing them (its machine lost) keeps its keys: about 25 s.
* SQLite (the embedded default of ``make run``): one gateway process uses the
  file, so the locks are a set in that process; a restarted gateway holds none.

An attempt is known by when it began (``created_at``): its answer is stored
only if its record was not taken over meanwhile.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Connection, Engine
from werkzeug.wrappers import Request

from shared.config import settings
from shared.database import create_schema, database_url_for
from shared.errors import Conflict, InvalidInput
from shared.jsonready import aware
from shared.logging import get_logger
from shared.sql import create_sql_engine, insert_for, shared_engine, write_transaction

MAX_KEY_LENGTH = 200

log = get_logger("gateway.idempotency")

metadata = sa.MetaData()
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("content_type", sa.String(100)),
    sa.Column("body", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: bytes


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def request_fingerprint(request: Request) -> str:
    """What makes two requests the same one. A multipart body is compared by
    its fields and files, not its bytes: a client builds a new random boundary
    each time it sends, so a retried upload's bytes never match the first's."""
    if request.mimetype != "multipart/form-data":
        return fingerprint(request.method, request.full_path, request.get_data(cache=True))

    def text(*values: object) -> bytes:
        # A hostile part may have no name at all, or text no codec takes.
        return ":".join(map(str, values)).encode("utf-8", "surrogatepass")

    def key(item: tuple[object, object]) -> tuple[str, str]:
        return str(item[0]), str(item[1])

    parts = [text(name, value) for name, value in sorted(request.form.items(multi=True), key=key)]
    for name, upload in sorted(request.files.items(multi=True), key=lambda item: str(item[0])):
        content = upload.stream.read()
        upload.stream.seek(0)
        digest = hashlib.sha256(content).hexdigest()
        parts.append(text(name, upload.filename, upload.mimetype, digest))
    return fingerprint(request.method, request.full_path, b"\n".join(parts))


# -- the key's lock, one class per dialect ------------------------------------------


class Hold(Protocol):
    """A key's lock, held: the attempt writes its record through it."""

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def release(self) -> None: ...


class KeyLocks(Protocol):
    def try_hold(self, scope: str, key: str) -> Hold | None:
        """The key's lock, or None at once if a live attempt holds it."""

    def close(self) -> None: ...


def advisory_lock_id(scope: str, key: str) -> int:
    """The key's 64-bit advisory lock id (a collision costs a spurious 409)."""
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL: a session-level advisory lock on a connection kept for the attempt.

    The pool is its own, as large as the requests the gateway runs at once
    (``concurrency``), with no overflow: an attempt never waits for a
    connection, and the gateway's other pools are not drained by slow POSTs.
    """

    def __init__(self, url: str | sa.URL, concurrency: int) -> None:
        self.engine = create_sql_engine(url, pool_size=concurrency)
        sa.event.listen(self.engine, "connect", _keepalives)

    def try_hold(self, scope: str, key: str) -> Hold | None:
        conn = self.engine.connect()
        try:
            held = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": advisory_lock_id(scope, key)}
            ).scalar_one()
            conn.commit()  # a session-level lock outlives the transaction
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not held:
            conn.close()
            return None
        return _SessionHold(conn)

    def close(self) -> None:
        self.engine.dispose()


def _keepalives(dbapi_conn: Any, _record: Any) -> None:
    """The server probes an idle connection after 10 s and drops it after three
    unanswered probes 5 s apart (PostgreSQL's default is the system's: 2 hours)."""
    with dbapi_conn.cursor() as cur:
        cur.execute(
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
            " SET tcp_keepalives_count = 3"
        )
    dbapi_conn.commit()


class _SessionHold:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.conn.begin():
            yield self.conn

    def release(self) -> None:
        try:
            self.conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            self.conn.commit()
        except Exception:
            # The session (and with it the lock) must not go back to the pool.
            self.conn.invalidate()
            log.warning("idempotency lock released by closing its connection", exc_info=True)
        finally:
            self.conn.close()


class ProcessLocks:
    """SQLite: the one gateway process using the file holds every lock (see above)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._held: set[tuple[str, str]] = set()
        self._mutex = threading.Lock()

    def try_hold(self, scope: str, key: str) -> Hold | None:
        with self._mutex:
            if (scope, key) in self._held:
                return None
            self._held.add((scope, key))
        return _ProcessHold(self, (scope, key))

    def release(self, held: tuple[str, str]) -> None:
        with self._mutex:
            self._held.discard(held)

    def close(self) -> None:
        pass


class _ProcessHold:
    def __init__(self, locks: ProcessLocks, held: tuple[str, str]) -> None:
        self.locks, self.held = locks, held

    def transaction(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.locks.engine)

    def release(self) -> None:
        self.locks.release(self.held)


def key_locks_for(engine: Engine, concurrency: int) -> KeyLocks:
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(engine.url, concurrency)
    return ProcessLocks(engine)


# -- the store ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    hold: Hold
    began: datetime
    thread: int


class IdempotencyStore:
    """The gateway's record of keys. ``concurrency``: the requests it runs at
    once (Nameko's ``max_workers``), each holding at most one key's lock."""

    def __init__(self, engine: Engine, ttl: timedelta, concurrency: int = 10) -> None:
        self.engine = engine
        self.ttl = ttl
        self.locks = key_locks_for(engine, concurrency)
        self._insert = insert_for(engine)
        self._attempts: dict[tuple[str, str], _Attempt] = {}

    def begin(self, scope: str, key: str, print_: str) -> StoredAnswer | None:
        """None: go ahead (the key is now pending, and its lock held until
        :meth:`complete` or :meth:`abandon`). Otherwise the stored answer."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(
                "the Idempotency-Key header must be 1 to 200 characters",
                {"fields": {"Idempotency-Key": ["Invalid length."]}},
            )
        hold = self.locks.try_hold(scope, key)
        if hold is None:  # a live attempt has it
            return self._answer(self._read(scope, key), print_, running=True)
        now = datetime.now(UTC)
        try:
            with hold.transaction() as conn:
                row = self._claim(conn, scope, key, print_, now)
        except BaseException:
            hold.release()
            raise
        if row is not None:
            hold.release()
            return self._answer(row, print_, running=False)
        self._attempts[(scope, key)] = _Attempt(hold, now, threading.get_ident())
        return None

    def _claim(self, conn: Connection, scope: str, key: str, print_: str, now: datetime) -> Any:
        """Record the attempt (None), or give the record that answers instead.
        The caller holds the key's lock: a pending record's attempt has died."""
        t = idempotency_keys
        inserted = conn.execute(
            self._insert(t)
            .values(scope=scope, key=key, fingerprint=print_, state="pending", created_at=now)
            .on_conflict_do_nothing()
        ).rowcount
        if inserted:
            return None
        row = conn.execute(
            sa.select(t).where(t.c.scope == scope, t.c.key == key).with_for_update()
        ).one()
        expired = aware(row.created_at) < now - self.ttl
        abandoned = row.state == "pending" and row.fingerprint == print_
        if not (expired or abandoned):
            return row
        conn.execute(
            t.update()
            .where(t.c.scope == scope, t.c.key == key)
            .values(fingerprint=print_, state="pending", status=None, body=None, created_at=now)
        )
        if abandoned and not expired:
            log.info("idempotency key taken over from a dead attempt", scope=scope, key=key)
        return None

    def _read(self, scope: str, key: str) -> Any:
        t = idempotency_keys
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(t).where(t.c.scope == scope, t.c.key == key)
            ).one_or_none()

    def _answer(self, row: Any, print_: str, running: bool) -> StoredAnswer:
        """What a request gets when another attempt has (or had) the key."""
        if row is not None and row.fingerprint != print_:
            raise InvalidInput(
                "this Idempotency-Key was used for a different request",
                {"reason": "idempotency_key_reused"},
            )
        if row is None or row.state == "pending" or (running and self._expired(row)):
            raise Conflict(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                {"reason": "idempotency_key_in_progress"},
            )
        return StoredAnswer(row.status, row.content_type, row.body)

    def _expired(self, row: Any) -> bool:
        return bool(aware(row.created_at) < datetime.now(UTC) - self.ttl)

    def complete(self, scope: str, key: str, answer: StoredAnswer) -> None:
        self._end(
            scope,
            key,
            idempotency_keys.update().values(
                state="done",
                status=answer.status,
                content_type=answer.content_type,
                body=answer.body,
            ),
        )

    def abandon(self, scope: str, key: str) -> None:
        """Forget the attempt: the next request with the key runs anew."""
        self._end(scope, key, idempotency_keys.delete())

    def _end(self, scope: str, key: str, statement: sa.Update | sa.Delete) -> None:
        """Write the attempt's end through its lock, then release the lock."""
        attempt = self._attempts.pop((scope, key), None)
        if attempt is None:
            log.warning("idempotency key ended without its attempt", scope=scope, key=key)
            return
        t = idempotency_keys
        try:
            with attempt.hold.transaction() as conn:
                mine = (t.c.scope == scope, t.c.key == key, t.c.created_at == attempt.began)
                if conn.execute(statement.where(*mine)).rowcount == 0:
                    log.warning("idempotency key was taken over", scope=scope, key=key)
        finally:
            attempt.hold.release()

    def release_strays(self) -> None:
        """Release the locks this thread (a worker's green thread) still holds:
        their records stay pending, and the next attempt takes them over."""
        me = threading.get_ident()
        for held, attempt in list(self._attempts.items()):
            if attempt.thread == me and self._attempts.pop(held, None) is attempt:
                log.warning("idempotency key left pending", scope=held[0], key=held[1])
                attempt.hold.release()

    def close(self) -> None:
        self.locks.close()


class Idempotency(DependencyProvider):
    """Injects the gateway's :class:`IdempotencyStore` (in its own database)."""

    def setup(self) -> None:
        engine = shared_engine(database_url_for(self.container))
        create_schema(engine, metadata)
        ttl = timedelta(hours=settings().idempotency_ttl_hours)
        self.store = IdempotencyStore(engine, ttl, concurrency=self.container.max_workers)

    def get_dependency(self, worker_ctx: Any) -> IdempotencyStore:
        return self.store

    def worker_teardown(self, worker_ctx: Any) -> None:
        # Every way out of a request ends its attempt (gateway.endpoint); this
        # catches a way nobody thought of, so that no lock outlives its request.
        self.store.release_strays()

    def stop(self) -> None:
        self.store.close()
