"""Event store on PostgreSQL or SQLite through SQLAlchemy Core.

Concurrency without a table lock (PostgreSQL):

* An append is one call of the ``marketplace_append`` function in autocommit
  (one round trip, one commit). It locks only its own stream's row in
  ``streams`` (an upsert), checks the expected revision there and bumps it.
  Writers to different streams never wait for each other.
* An event's global position is ``(transaction id << 20) + index in the append``.
  Positions therefore grow with transaction ids, not with commit order, so a
  reader must never go past a transaction that may still commit: it only reads
  below ``pg_snapshot_xmin(pg_current_snapshot()) << 20``. Every transaction
  below that horizon has finished, so nothing can appear later behind a reader.
  The filter is a range condition on the primary key, i.e. an index scan.
* ``NOTIFY``, sent after the append commits, wakes subscribers; it is never the
  source of truth (they re-read the table, and poll when no wake-up comes).
  Its payload names the categories appended to, so a subscriber wakes only
  for the streams it follows.
* A live subscriber reads the horizon first and remembers how far it has
  scanned: it never scans the same stretch of other categories' events twice,
  and when the horizon has not moved it asks nothing more.

SQLite serialises writers with ``BEGIN IMMEDIATE`` and numbers events with
AUTOINCREMENT, which then also follows commit order.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.eventstore.contract import (
    AppendResult,
    EventMetadata,
    EventStore,
    EventStoreUnavailable,
    ExpectedRevision,
    InvalidAppend,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamNotFound,
    StreamState,
    Subscription,
    WrongExpectedRevision,
    category_of,
    check_expected_revision,
    validate_append,
)
from shared.sql import create_sql_engine, insert_for, ping, write_transaction

BATCH_BITS = 20
"""Low bits of a PostgreSQL position that number events within one append."""

NOTIFY_CHANNEL = "marketplace_events"
PAGE_SIZE = 1000
IDLE_POLL_SECONDS = 0.5
HORIZON_REUSE_SECONDS = 0.005


def build_tables(dialect: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    md = sa.MetaData()
    # ``json`` rather than ``jsonb``: the log is written once and read whole,
    # and turning jsonb back into text was the server's main cost on reads.
    json_type = postgresql.JSON() if dialect == "postgresql" else sa.JSON()
    position = (
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True)
        if dialect == "sqlite"
        else sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False)
    )
    events = sa.Table(
        "events",
        md,
        position,
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("stream_name", sa.String(500), nullable=False),
        sa.Column("category", sa.String(500), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("data", json_type, nullable=False),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("stream_name", "revision", name="events_stream_revision"),
        sa.Index("events_category_position", "category", "position"),
        sa.Index("events_type_position", "event_type", "position"),
        sqlite_autoincrement=True,
    )
    streams = sa.Table(
        "streams",
        md,
        sa.Column("stream_name", sa.String(500), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False, server_default="-1"),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_age_seconds", sa.Integer),
        sa.Column("max_count", sa.Integer),
        sa.Column("truncate_before", sa.BigInteger),
    )
    return md, events, streams


_PG_APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION marketplace_append(
    p_stream text, p_category text, p_expected_kind text, p_expected bigint, p_events json
) RETURNS TABLE (first_revision bigint, last_revision bigint, last_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_revision bigint;
    v_deleted boolean;
    v_actual bigint;
    v_base bigint;
    v_count int;
BEGIN
    -- Lock this stream's row (creating it if new): the only lock an append takes.
    INSERT INTO streams AS s (stream_name, revision, deleted) VALUES (p_stream, -1, false)
    ON CONFLICT (stream_name) DO UPDATE SET stream_name = excluded.stream_name
    RETURNING s.revision, s.deleted INTO v_revision, v_deleted;
    v_actual := CASE WHEN v_deleted OR v_revision < 0 THEN NULL ELSE v_revision END;
    IF (p_expected_kind = 'no_stream' AND v_actual IS NOT NULL)
       OR (p_expected_kind = 'stream_exists' AND v_actual IS NULL)
       OR (p_expected_kind = 'exact' AND v_actual IS DISTINCT FROM p_expected) THEN
        RAISE EXCEPTION 'wrong expected revision'
            USING ERRCODE = 'MPWER', DETAIL = coalesce(v_actual::text, '');
    END IF;
    v_base := pg_current_xact_id()::text::bigint << 20;
    INSERT INTO events (position, event_id, stream_name, category, revision, event_type,
                        schema_version, data, metadata, recorded_at)
    SELECT v_base + e.ord - 1, (e.value->>'id')::uuid, p_stream, p_category,
           v_revision + e.ord, e.value->>'type', (e.value->>'version')::int,
           e.value->'data', e.value->'metadata', now()
    FROM json_array_elements(p_events) WITH ORDINALITY AS e(value, ord);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    UPDATE streams SET revision = v_revision + v_count, deleted = false
    WHERE stream_name = p_stream;
    RETURN QUERY SELECT v_revision + 1, v_revision + v_count, v_base + v_count - 1;
END $$
"""

_PG_APPEND_SQL = (
    "SELECT first_revision, last_revision, last_position FROM marketplace_append("
    "%(stream)s, %(category)s, %(kind)s, %(expected)s, CAST(%(events)s AS json))"
)
_PG_NOTIFY_SQL = f"SELECT pg_notify('{NOTIFY_CHANNEL}', %s)"
NOTIFY_ALL = "*"
"""A payload that wakes every subscriber (also sent when the categories would
not fit in PostgreSQL's 8000-byte payload); an empty payload means the same."""
_NOTIFY_PAYLOAD_LIMIT = 7000
WRONG_REVISION_SQLSTATE = "MPWER"


class SqlEventStore(EventStore):
    def __init__(
        self,
        url_or_engine: str | Engine,
        create_schema: bool = True,
        pool_size: int = 2,
    ) -> None:
        """Reads and appends share ``pool_size`` connections, and no more:
        every process of the marketplace holds a store, and their pools add
        up against the server's ``max_connections``."""
        self.engine = (
            url_or_engine
            if isinstance(url_or_engine, Engine)
            else create_sql_engine(url_or_engine, pool_size=pool_size)
        )
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported SQL dialect {self.dialect!r}")
        self._is_pg = self.dialect == "postgresql"
        if self._is_pg:
            self._notifier = _CoalescingNotifier(self.engine)
        self._listener: _PgListener | None = None
        self._listener_lock = threading.Lock()
        self._horizon_read: tuple[int, float] = (0, -1e9)
        self._horizon_lock = threading.Lock()
        self._live_queries: dict[tuple[bool, bool, int], sa.Select[Any]] = {}
        self.metadata, self.events, self.streams = build_tables(self.dialect)
        self._columns = [
            self.events.c[name]
            for name in (
                "position",
                "event_id",
                "stream_name",
                "revision",
                "event_type",
                "schema_version",
                "data",
                "metadata",
                "recorded_at",
            )
        ]
        if create_schema:
            self.create_schema()

    # -- schema -------------------------------------------------------------

    def create_schema(self) -> None:
        """Idempotent; safe when several processes start at once."""
        with write_transaction(self.engine) as conn:
            if self._is_pg:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727001)"))
            self.metadata.create_all(conn, checkfirst=True)
            if self._is_pg:
                conn.execute(sa.text(_PG_APPEND_FUNCTION))

    def drop_schema(self) -> None:
        with write_transaction(self.engine) as conn:
            self.metadata.drop_all(conn, checkfirst=True)

    # -- writing ------------------------------------------------------------

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        events = list(events)
        validate_append(stream, events, expected_revision)
        try:
            if self._is_pg:
                return self._append_autocommit(stream, events, expected_revision)
            with write_transaction(self.engine) as conn:
                return self._append_in(conn, stream, events, expected_revision)
        except WrongExpectedRevision:
            original = self._already_appended(stream, events)
            if original is None:
                raise
            return original
        except IntegrityError:
            # Another append recorded these event ids first (a retry racing
            # its original): answer with where they landed.
            original = self._already_appended(stream, events)
            if original is None:
                raise
            return original
        except (OperationalError, PoolTimeout) as exc:
            raise EventStoreUnavailable(str(exc)) from exc

    def _append_autocommit(
        self, stream: str, events: list[NewEvent], expected: ExpectedRevision
    ) -> AppendResult:
        """The hot path: one statement, one round trip, one commit.

        It runs on the pooled DBAPI connection: going through
        ``Connection.execute`` tripled the client CPU per append, and with 16
        writers sharing one interpreter that CPU was the ceiling.
        """
        sql, params = self._pg_append_call(stream, events, expected)
        try:
            with _autocommit_cursor(self.engine) as cur:
                try:
                    cur.execute(sql, params)
                except psycopg2.Error as exc:
                    self._raise_append_error(exc, stream, expected)
                    raise
                # the append function's one row: first and last revision, position
                first, last, position = cast("tuple[int, int, int]", cur.fetchone())
        except psycopg2.IntegrityError as exc:
            raise IntegrityError(sql, params, exc) from exc
        except psycopg2.OperationalError as exc:
            raise EventStoreUnavailable(str(exc)) from exc
        self._notifier.poke(params["category"])
        return AppendResult(first, last, position)

    @staticmethod
    def _raise_append_error(exc: Any, stream: str, expected: ExpectedRevision) -> None:
        if getattr(exc, "pgcode", None) == WRONG_REVISION_SQLSTATE:
            detail = exc.diag.message_detail
            raise WrongExpectedRevision(stream, expected, int(detail) if detail else None) from None

    def _pg_append_call(
        self, stream: str, events: list[NewEvent], expected: ExpectedRevision
    ) -> tuple[str, dict[str, Any]]:
        try:
            batch = orjson.dumps(
                [
                    {
                        "id": str(e.event_id),
                        "type": e.type,
                        "version": e.schema_version,
                        "data": e.data,
                        "metadata": e.metadata.to_dict(),
                    }
                    for e in events
                ],
                option=orjson.OPT_NON_STR_KEYS,
            ).decode()
        except (TypeError, ValueError) as exc:
            raise InvalidAppend(f"event data is not JSON: {exc}") from exc
        params = {
            "stream": stream,
            "category": category_of(stream),
            "kind": "exact" if isinstance(expected, int) else expected.value,
            "expected": expected if isinstance(expected, int) else None,
            "events": batch,
        }
        return _PG_APPEND_SQL, params

    def _append_in(
        self, conn: Connection, stream: str, events: list[NewEvent], expected: ExpectedRevision
    ) -> AppendResult:
        """The append inside ``conn``'s open transaction (SQLite's path; tests
        use it on PostgreSQL to hold a transaction open)."""
        if not self._is_pg:
            return self._append_sqlite(conn, stream, events, expected)
        sql, params = self._pg_append_call(stream, events, expected)
        try:
            row = conn.exec_driver_sql(sql, params).one()
        except sa.exc.DBAPIError as exc:
            self._raise_append_error(exc.orig, stream, expected)
            raise
        return AppendResult(*row)

    def _append_sqlite(
        self, conn: Connection, stream: str, events: list[NewEvent], expected: ExpectedRevision
    ) -> AppendResult:
        head = self._lock_stream(conn, stream)
        actual = None if head.deleted or head.revision < 0 else head.revision
        check_expected_revision(stream, expected, actual)
        first = head.revision + 1
        now = datetime.now(UTC)
        category = category_of(stream)
        rows = [
            {
                "event_id": e.event_id,
                "stream_name": stream,
                "category": category,
                "revision": first + i,
                "event_type": e.type,
                "schema_version": e.schema_version,
                "data": e.data,
                "metadata": e.metadata.to_dict(),
                "recorded_at": now,
            }
            for i, e in enumerate(events)
        ]
        stmt = self.events.insert().returning(self.events.c.position, sort_by_parameter_order=True)
        last_position = conn.execute(stmt, rows).scalars().all()[-1]
        last = first + len(rows) - 1
        conn.execute(
            self.streams.update()
            .where(self.streams.c.stream_name == stream)
            .values(revision=last, deleted=False)
        )
        return AppendResult(first_revision=first, last_revision=last, position=last_position)

    def _lock_stream(self, conn: Connection, stream: str) -> Row[*tuple[Any, ...]]:
        """Create the stream's row if needed and lock it for this transaction."""
        insert = insert_for(self.dialect)
        s = self.streams.c
        stmt = insert(self.streams).values(stream_name=stream, revision=-1, deleted=False)
        stmt = stmt.on_conflict_do_update(
            index_elements=[s.stream_name], set_={"stream_name": stmt.excluded.stream_name}
        )
        return conn.execute(stmt.returning(s.revision, s.deleted)).one()

    def _already_appended(self, stream: str, events: list[NewEvent]) -> AppendResult | None:
        ids = [e.event_id for e in events]
        c = self.events.c
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(c.event_id, c.stream_name, c.revision, c.position).where(
                    c.event_id.in_(ids)
                )
            ).all()
        if not found:
            return None
        by_id = {row.event_id: row for row in found}
        if len(by_id) != len(ids) or any(row.stream_name != stream for row in found):
            raise WrongExpectedRevision(stream, StreamState.ANY, self.stream_revision(stream))
        first, last = by_id[ids[0]], by_id[ids[-1]]
        return AppendResult(first.revision, last.revision, last.position)

    # -- reading ------------------------------------------------------------

    def _horizon(self) -> Any:
        """Upper bound (exclusive) of positions every reader may see now."""
        xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
        return sa.cast(sa.cast(xmin, sa.Text), sa.BigInteger).op("<<")(
            sa.literal_column(str(BATCH_BITS), sa.Integer)
        )

    def _to_event(self, row: Row[*tuple[Any, ...]]) -> RecordedEvent:
        recorded_at = row[8]
        if recorded_at.tzinfo is None:
            recorded_at = recorded_at.replace(tzinfo=UTC)
        return RecordedEvent(
            event_id=row[1],
            type=row[4],
            schema_version=row[5],
            data=row[6],
            metadata=EventMetadata.from_dict(row[7]),
            stream=row[2],
            revision=row[3],
            position=row[0],
            recorded_at=recorded_at,
        )

    def read_stream(
        self,
        stream: str,
        from_revision: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        s, c = self.streams.c, self.events.c
        with self.engine.connect() as conn:
            head = conn.execute(
                sa.select(
                    s.revision, s.deleted, s.max_age_seconds, s.max_count, s.truncate_before
                ).where(s.stream_name == stream)
            ).one_or_none()
            if head is None or head.deleted or head.revision < 0:
                raise StreamNotFound(stream)
            lowest = head.truncate_before or 0
            if head.max_count is not None:
                lowest = max(lowest, head.revision - head.max_count + 1)
            query = sa.select(*self._columns).where(c.stream_name == stream, c.revision >= lowest)
            if head.max_age_seconds is not None:
                oldest = datetime.now(UTC) - timedelta(seconds=head.max_age_seconds)
                query = query.where(c.recorded_at >= oldest)
            if from_revision is not None:
                query = query.where(
                    c.revision <= from_revision if backwards else c.revision >= from_revision
                )
            query = query.order_by(c.revision.desc() if backwards else c.revision)
            if limit is not None:
                query = query.limit(limit)
            return [self._to_event(row) for row in conn.execute(query)]

    def _page_query(
        self,
        after: int | None,
        start: int | None,
        backwards: bool,
        limit: int,
        categories: Sequence[str] | None,
        event_types: Sequence[str] | None,
    ) -> sa.Select[Any]:
        c = self.events.c
        query = sa.select(*self._columns)
        if self._is_pg:
            query = query.where(c.position < self._horizon())
        if after is not None:
            query = query.where(c.position < after if backwards else c.position > after)
        elif start is not None:
            query = query.where(c.position <= start if backwards else c.position >= start)
        if categories:
            query = query.where(c.category.in_(list(categories)))
        if event_types:
            query = query.where(c.event_type.in_(list(event_types)))
        return query.order_by(c.position.desc() if backwards else c.position).limit(limit)

    def read_page(
        self,
        after: int | None,
        limit: int,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
        start: int | None = None,
        backwards: bool = False,
    ) -> list[RecordedEvent]:
        query = self._page_query(after, start, backwards, limit, categories, event_types)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            return [self._to_event(row) for row in rows]
        except (OperationalError, PoolTimeout) as exc:
            raise EventStoreUnavailable(str(exc)) from exc

    def _shared_horizon(self) -> int:
        """The horizon, read at most once per ``HORIZON_REUSE_SECONDS`` for all
        of this process's subscriptions: one notification wakes several of
        them at once, and under a stream of writes each re-polls every few
        milliseconds. A horizon read a moment ago is only lower than the
        current one (it never moves back), so reusing it is always safe."""
        with self._horizon_lock:
            value, read_at = self._horizon_read
            if time.monotonic() - read_at < HORIZON_REUSE_SECONDS:
                return value
            with self.engine.connect() as conn:
                value = int(conn.execute(sa.select(self._horizon())).scalar_one())
            self._horizon_read = (value, time.monotonic())
            return value

    def _live_query(self, by_category: bool, by_type: bool, limit: int) -> sa.Select[Any]:
        """The live page query, built once per shape: building and hashing a
        new statement on every poll was a quarter of a subscriber's time."""
        shape = (by_category, by_type, limit)
        query = self._live_queries.get(shape)
        if query is None:
            query = self._live_queries[shape] = self._build_live_query(*shape)
        return query

    def _build_live_query(self, by_category: bool, by_type: bool, limit: int) -> sa.Select[Any]:
        c = self.events.c
        query = sa.select(*self._columns).where(
            c.position > sa.bindparam("after", type_=sa.BigInteger),
            c.position < sa.bindparam("horizon", type_=sa.BigInteger),
        )
        if by_category:
            query = query.where(
                c.category == sa.any_(sa.bindparam("categories", type_=ARRAY(sa.String)))
            )
        if by_type:
            query = query.where(
                c.event_type == sa.any_(sa.bindparam("event_types", type_=ARRAY(sa.String)))
            )
        return query.order_by(c.position).limit(limit)

    def _read_live(
        self,
        after: int | None,
        limit: int,
        categories: Sequence[str] | None,
        event_types: Sequence[str] | None,
    ) -> tuple[list[RecordedEvent], int | None]:
        """PostgreSQL: the events after ``after`` below the horizon, and the
        position the scan reached (every later event is above it). With the
        horizon where it was, it costs one tiny query and no scan."""
        try:
            horizon = self._shared_horizon()
            if after is not None and horizon - 1 <= after:
                return [], after
            with self.engine.connect() as conn:
                rows = conn.execute(
                    self._live_query(bool(categories), bool(event_types), limit),
                    {
                        "after": -1 if after is None else after,
                        "horizon": horizon,
                        "categories": list(categories or ()),
                        "event_types": list(event_types or ()),
                    },
                ).all()
        except (OperationalError, PoolTimeout) as exc:
            raise EventStoreUnavailable(str(exc)) from exc
        events = [self._to_event(row) for row in rows]
        reached = events[-1].position if len(events) == limit else horizon - 1
        return events, reached

    def read_all(
        self,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Iterator[RecordedEvent]:
        remaining = limit
        after: int | None = None
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = self.read_page(
                after, size, categories, event_types, start=from_position, backwards=backwards
            )
            yield from page
            if len(page) < size:
                return
            after = page[-1].position
            if remaining is not None:
                remaining -= len(page)

    def subscribe(
        self,
        checkpoint: int | None = None,
        categories: Sequence[str] | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Subscription:
        return SqlSubscription(self, checkpoint, categories, event_types)

    def stream_revision(self, stream: str) -> int | None:
        s = self.streams.c
        with self.engine.connect() as conn:
            head = conn.execute(
                sa.select(s.revision, s.deleted).where(s.stream_name == stream)
            ).one_or_none()
        if head is None or head.deleted or head.revision < 0:
            return None
        return int(head.revision)

    def last_position(self) -> int:
        c = self.events.c
        query = sa.select(sa.func.max(c.position))
        if self._is_pg:
            query = query.where(c.position < self._horizon())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- stream metadata ----------------------------------------------------

    def get_stream_metadata(self, stream: str) -> StreamMetadata:
        s = self.streams.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(s.max_age_seconds, s.max_count, s.truncate_before).where(
                    s.stream_name == stream
                )
            ).one_or_none()
        if row is None:
            return StreamMetadata()
        return StreamMetadata(row.max_age_seconds, row.max_count, row.truncate_before)

    def set_stream_metadata(self, stream: str, metadata: StreamMetadata) -> None:
        with write_transaction(self.engine) as conn:
            self._lock_stream(conn, stream)
            conn.execute(
                self.streams.update()
                .where(self.streams.c.stream_name == stream)
                .values(
                    max_age_seconds=metadata.max_age_seconds,
                    max_count=metadata.max_count,
                    truncate_before=metadata.truncate_before,
                )
            )

    def delete_stream(
        self, stream: str, expected_revision: ExpectedRevision = StreamState.ANY
    ) -> None:
        with write_transaction(self.engine) as conn:
            head = self._lock_stream(conn, stream)
            actual = None if head.deleted or head.revision < 0 else head.revision
            if actual is None:
                raise StreamNotFound(stream)
            check_expected_revision(stream, expected_revision, actual)
            conn.execute(
                self.streams.update()
                .where(self.streams.c.stream_name == stream)
                .values(deleted=True, truncate_before=actual + 1)
            )

    # -- plumbing -----------------------------------------------------------

    def ping(self) -> None:
        try:
            ping(self.engine)  # (on a connection of its own: no pool to wait for)
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc)) from exc

    def listener(self) -> _PgListener:
        """The store's one LISTEN connection, started by its first subscription."""
        with self._listener_lock:
            if self._listener is None:
                self._listener = _PgListener(self.engine)
            return self._listener

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.engine.dispose()
        if self._is_pg:
            self._notifier.close()


@contextmanager
def _autocommit_cursor(engine: Engine) -> Iterator[Any]:
    """A cursor on one of the pool's connections, in autocommit for a single
    statement: no BEGIN or COMMIT round trips. The connection goes back as it
    came (the pool's other users begin transactions on it), or, if it broke,
    not at all."""
    conn = engine.raw_connection()
    dbapi: Any = conn.driver_connection
    try:
        dbapi.autocommit = True
        with closing(conn.cursor()) as cur:
            yield cur
    except psycopg2.OperationalError:
        conn.invalidate()
        raise
    finally:
        if conn.is_valid:
            try:
                dbapi.autocommit = False
            except psycopg2.Error:
                conn.invalidate()
        conn.close()


class _CoalescingNotifier:
    """Wakes subscribers after appends, one NOTIFY for any number of them.

    Appends only set a flag after they commit. This thread clears the flag and
    then sends NOTIFY, so every append that committed before the clear is
    covered by a NOTIFY sent after it; one that commits later sets the flag
    again. The NOTIFY must stay out of the append's own transaction:
    PostgreSQL holds a database-wide notify lock from a notifying commit's
    start to its end, WAL flush included, which would serialise all writers.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending = threading.Event()
        self._categories: set[str] = set()
        self._categories_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def poke(self, category: str) -> None:
        with self._categories_lock:
            self._categories.add(category)
        self._pending.set()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, daemon=True, name="event-store-notifier"
                    )
                    self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            if not self._pending.wait(timeout=1.0):
                continue
            self._pending.clear()
            with self._categories_lock:
                categories, self._categories = self._categories, set()
            payload = ",".join(sorted(categories))
            if not payload or len(payload) > _NOTIFY_PAYLOAD_LIMIT:
                payload = NOTIFY_ALL
            try:
                with _autocommit_cursor(self._engine) as cur:
                    cur.execute(_PG_NOTIFY_SQL, (payload,))
            except Exception:
                time.sleep(0.1)

    def close(self) -> None:
        self._closed = True
        self._pending.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class _PgListener:
    """One LISTEN connection per store, shared by all its subscriptions.

    A process runs several projections; each used to hold its own LISTEN
    connection, and with every process of the marketplace doing so they added
    up against PostgreSQL's ``max_connections``. A notification sets every
    registered waker's event whose categories it names (sticky, so one that
    arrives between a read and the wait is not missed)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._events: dict[threading.Event, frozenset[str] | None] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="event-store-listen")
        self._thread.start()

    def register(self, categories: Sequence[str] | None) -> threading.Event:
        """``categories`` None: woken by every append."""
        event = threading.Event()
        with self._lock:
            self._events[event] = frozenset(categories) if categories else None
        return event

    def unregister(self, event: threading.Event) -> None:
        with self._lock:
            self._events.pop(event, None)

    def _wake_all(self) -> None:
        with self._lock:
            for event in self._events:
                event.set()

    def _wake(self, payloads: list[str]) -> None:
        appended: set[str] = set()
        for payload in payloads:
            if payload in ("", NOTIFY_ALL):
                self._wake_all()
                return
            appended.update(payload.split(","))
        with self._lock:
            for event, categories in self._events.items():
                if categories is None or not categories.isdisjoint(appended):
                    event.set()

    def _connect(self) -> psycopg2.extensions.connection:
        conn = self._engine.raw_connection()
        # a connection just checked out of a psycopg2 engine's pool
        raw = cast(psycopg2.extensions.connection, conn.driver_connection)
        conn.detach()  # it lives as long as the listener, not in the pool
        raw.autocommit = True
        with raw.cursor() as cur:
            cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return raw

    def _run(self) -> None:
        raw = None
        while not self._closed:
            try:
                if raw is None or raw.closed:
                    raw = self._connect()
                    self._wake_all()  # anything may have happened while away
                ready, _, _ = select.select([raw], [], [], 1.0)
                if ready:
                    raw.poll()
                    if raw.notifies:
                        payloads = [n.payload for n in raw.notifies]
                        raw.notifies.clear()
                        self._wake(payloads)
            except (OSError, ValueError, psycopg2.Error, SQLAlchemyError):
                with suppress(Exception):
                    if raw is not None:
                        raw.close()
                raw = None
                self._wake_all()  # subscribers re-read rather than sleep on a dead line
                time.sleep(0.5)
        if raw is not None:
            with suppress(Exception):
                raw.close()

    def close(self) -> None:
        self._closed = True


class _PgWaker:
    """A subscription's view of its store's shared listener."""

    def __init__(self, listener: _PgListener, categories: Sequence[str] | None) -> None:
        self._listener = listener
        self._event = listener.register(categories)

    def wait(self, timeout: float) -> bool:
        """True if woken by a notification."""
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke

    def close(self) -> None:
        self._listener.unregister(self._event)
        self._event.set()


class _PollWaker:
    def wait(self, timeout: float) -> bool:
        time.sleep(min(timeout, 0.05))
        return False

    def close(self) -> None:
        pass


class SqlSubscription(Subscription):
    def __init__(
        self,
        store: SqlEventStore,
        checkpoint: int | None,
        categories: Sequence[str] | None,
        event_types: Sequence[str] | None,
    ) -> None:
        self._store = store
        self._after = checkpoint
        self._scanned = checkpoint  # PostgreSQL: no matching event up to here
        self._categories = categories
        self._event_types = event_types
        self._stopped = False
        self._waker: _PgWaker | _PollWaker = (
            _PgWaker(store.listener(), categories)
            if store.dialect == "postgresql"
            else _PollWaker()
        )

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def position(self) -> int | None:
        """Position of the last event returned (or the starting checkpoint)."""
        return self._after

    def next_batch(self, max_count: int = 500, timeout: float = 1.0) -> list[RecordedEvent]:
        deadline = time.monotonic() + timeout
        pause = IDLE_POLL_SECONDS
        while not self._stopped:
            if self._store.dialect == "postgresql":
                batch, self._scanned = self._store._read_live(
                    self._scanned, max_count, self._categories, self._event_types
                )
            else:
                batch = self._store.read_page(
                    self._after, max_count, self._categories, self._event_types
                )
            if batch:
                self._after = batch[-1].position
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if self._waker.wait(min(remaining, pause)):
                # Woken but perhaps still behind an older transaction that has
                # not committed yet: look again soon rather than at idle pace.
                pause = 0.01
            else:
                pause = min(IDLE_POLL_SECONDS, pause * 2)
        return []

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._waker.close()
