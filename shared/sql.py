"""SQL databases the one way this project uses them (engines, write transactions).

Engines are shared per URL within a process (``shared_engine``): under
eventlet a second SQLite connection writing the same file would freeze the
whole process for its busy timeout.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import psycopg2.extras
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import NullPool, StaticPool

from shared.config import settings

#: What :func:`insert_for` builds: an INSERT that offers ``on_conflict_do_*``.
UpsertInsert = postgresql.Insert | sqlite.Insert

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def name_connections(process: str) -> None:
    """Every PostgreSQL connection this process opens from now on is named
    ``marketplace-<process>`` (libpq's ``PGAPPNAME``), so ``pg_stat_activity``
    tells an operator which process holds which of the server's connections."""
    os.environ.setdefault("PGAPPNAME", f"marketplace-{process}")


def shared_engine(url: str) -> Engine:
    """The process's one engine for ``url``: ``DB_POOL_SIZE`` connections, and
    never more (a worker that finds them all busy waits for one, up to
    ``DB_POOL_TIMEOUT_SECONDS``). Every process of the marketplace holds
    pools, and together they must stay within the server's
    ``max_connections``: a bounded pool keeps that sum knowable (README,
    "Connections")."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_sql_engine(url, pool_size=settings().db_pool_size)
        return engine


def shared_reader(url: str) -> Engine:
    """The process's engine for queries that are one SELECT each.

    On PostgreSQL it runs in autocommit: a single statement needs no
    transaction, and BEGIN and ROLLBACK would be two more round trips per read.
    It draws on :func:`shared_engine`'s pool, so reads and writes share one
    budget of connections (SQLite: the one shared connection).
    """
    if sa.make_url(url).get_backend_name() == "sqlite":
        return shared_engine(url)
    key = "reader:" + url
    with _engines_lock:
        engine = _engines.get(key)
    if engine is None:
        engine = shared_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        with _engines_lock:
            engine = _engines.setdefault(key, engine)
    return engine


class SessionLocks:
    """The session advisory locks a process holds on one PostgreSQL database,
    all on one connection of their own.

    A lock held for as long as the process runs (a single active projection,
    the relay) would otherwise keep one of the pool's connections each, while
    its holder needs another to work: with as many holders as the pool has
    connections, none could. Each lock is held once in the process, as if
    each had its own session. If the connection breaks, the server has
    released them all, as it would have released a lock on its own
    connection; the next call opens another."""

    def __init__(self, engine: Engine) -> None:
        self._engine = create_sql_engine(engine.url, pool_size=1, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._held: set[int] = set()
        self._mutex = threading.Lock()

    def try_lock(self, key: int) -> bool:
        with self._mutex:
            if key in self._held:
                return False
            if self._scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
                self._held.add(key)
                return True
            return False

    def unlock(self, key: int) -> None:
        with self._mutex:
            if key in self._held:
                self._held.discard(key)
                self._scalar(sa.select(sa.func.pg_advisory_unlock(key)))

    def _scalar(self, statement: sa.Select[Any]) -> Any:
        conn = self._conn
        if conn is None or conn.invalidated or conn.closed:
            # Forgotten before reconnecting: if the database is still away,
            # the next call tries again (a closed connection reads as valid).
            self._conn = None
            self._held.clear()  # (a new session holds nothing)
            if conn is not None:
                with suppress(Exception):
                    conn.close()
            conn = self._conn = self._engine.connect()
        return conn.execute(statement).scalar()


_session_locks: dict[Engine, SessionLocks] = {}


def session_locks(engine: Engine) -> SessionLocks:
    """The process's :class:`SessionLocks` on ``engine``'s database."""
    with _engines_lock:
        locks = _session_locks.get(engine)
        if locks is None:
            locks = _session_locks[engine] = SessionLocks(engine)
        return locks


def create_sql_engine(url: str | sa.URL, pool_size: int = 5, **engine_options: Any) -> Engine:
    """An engine configured the one way this project uses SQL databases: a
    pool of ``pool_size`` connections with no overflow. (An overflow
    connection is closed when returned: opening one per request cost the
    gateway a sixth of its time under load, measured with py-spy.)

    A bare ``postgresql://`` URL means psycopg2: SQLAlchemy 2.1 would pick
    psycopg 3, whose waits block the whole process under eventlet.
    """
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    engine_options.setdefault("pool_timeout", settings().db_pool_timeout_seconds)
    engine = sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        **engine_options,
    )
    if parsed.drivername == "postgresql+psycopg2":
        sa.event.listen(engine, "connect", _decode_json_with_orjson)
    return engine


_probes: dict[sa.URL, Engine] = {}


def ping(engine: Engine) -> None:
    """Raise unless ``engine``'s database answers, asked on a connection of
    its own that is closed after: a health probe says whether the database is
    there, and must not wait behind busy workers for one of the pool's (that
    wait is bounded by ``DB_POOL_TIMEOUT_SECONDS`` and fails on its own)."""
    probe = engine  # SQLite: one connection per process, never busy for long
    if engine.dialect.name != "sqlite":
        with _engines_lock:
            if engine.url not in _probes:
                _probes[engine.url] = sa.create_engine(
                    engine.url, poolclass=NullPool, connect_args={"connect_timeout": 5}
                )
            probe = _probes[engine.url]
    with probe.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _decode_json_with_orjson(dbapi_conn: Any, _record: Any) -> None:
    """JSON decoding is most of the cost of reading events; orjson is several
    times faster than the standard library's."""
    psycopg2.extras.register_default_json(dbapi_conn, loads=orjson.loads)
    psycopg2.extras.register_default_jsonb(dbapi_conn, loads=orjson.loads)


def _sqlite_engine(url: sa.URL) -> Engine:
    # One connection per process: under eventlet a second SQLite writer in the
    # same process would freeze it for the whole busy timeout.
    database = url.database or ":memory:"
    in_memory = database == ":memory:"
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": 30, "check_same_thread": False},
        "json_deserializer": orjson.loads,
    }
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def insert_for(
    bind_or_dialect: Engine | Connection | Dialect | str,
) -> Callable[[sa.TableClause], UpsertInsert]:
    """The dialect's own ``insert``: SQLAlchemy's generic one has no ON CONFLICT, while
    PostgreSQL's and SQLite's both do (``bind_or_dialect`` may be the dialect's name)."""
    if isinstance(bind_or_dialect, str):
        name = bind_or_dialect
    elif isinstance(bind_or_dialect, Dialect):
        name = bind_or_dialect.name
    else:
        name = bind_or_dialect.dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes; on SQLite it takes the write lock up front
    so that two writers never deadlock upgrading read locks."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def temporary_database(server_url: str, prefix: str = "mp_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server for the duration of the block
    (tests, benchmarks, and ``marketplace-events verify``'s scratch rebuilds)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # NullPool: no admin connection held open for the block's whole life (the
    # benchmark's nine databases kept nine of the server's 100 busy).
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
