"""A service's own read-model database, and the bookkeeping every service needs in it.

Two tables live beside each service's read model:

* ``processed_events``: ids of the messages a consumer has applied, written in
  the same transaction as the effect, so a redelivered message changes nothing.
* ``checkpoints``: how far each projection has read the log, written in the
  same transaction as the projection's rows (and the projection's version).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Connection, Engine

from shared.config import settings
from shared.sql import insert_for, shared_engine, write_transaction

T = TypeVar("T")

bookkeeping = sa.MetaData()

processed_events = sa.Table(
    "processed_events",
    bookkeeping,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    bookkeeping,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def create_schema(engine: Engine, *metadatas: sa.MetaData) -> None:
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727002)"))
        for md in (bookkeeping, *metadatas):
            md.create_all(conn, checkfirst=True)


def read_checkpoint(conn: Connection, name: str) -> tuple[int | None, int | None]:
    """(position, version) of a checkpoint; (None, None) if never saved."""
    row = conn.execute(
        sa.select(checkpoints.c.position, checkpoints.c.version).where(checkpoints.c.name == name)
    ).one_or_none()
    return (None, None) if row is None else (row.position, row.version)


def save_checkpoint(conn: Connection, name: str, position: int | None, version: int = 1) -> None:
    conn.execute(
        _checkpoint_upsert(conn.dialect.name),
        {"name": name, "position": position, "version": version, "updated_at": _now()},
    )


@functools.cache
def _checkpoint_upsert(dialect: str) -> Any:
    """Built once per dialect: every projection batch saves its checkpoint."""
    insert = insert_for(dialect)
    stmt = insert(checkpoints)
    return stmt.on_conflict_do_update(
        index_elements=[checkpoints.c.name],
        set_={
            "position": stmt.excluded.position,
            "version": stmt.excluded.version,
            "updated_at": stmt.excluded.updated_at,
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            yield conn

    def handle_once(
        self, consumer: str, event_id: uuid.UUID | str, effect: Callable[[Connection], T]
    ) -> tuple[bool, T | None]:
        """Apply ``effect`` unless ``consumer`` already applied ``event_id``.

        Returns (applied, result). The id is recorded in the effect's own
        transaction: both happen, or neither. Two deliveries racing each other
        serialise on the primary key; the second finds the first's row.
        """
        event_uuid = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))
        with self.transaction() as conn:
            stmt = (
                insert_for(conn)(processed_events)
                .values(consumer=consumer, event_id=event_uuid, processed_at=_now())
                .on_conflict_do_nothing()
            )
            if conn.execute(stmt).rowcount == 0:
                return False, None
            return True, effect(conn)


def database_url_for(container: Any) -> str:
    return container.config.get("DATABASE_URL") or settings().database_url(container.service_name)


class ReadModelDatabase(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects the service's :class:`Database`; creates its tables at start-up.

    Read-model schemas are not migrated: a changed projection gets a new
    version and is rebuilt from the event log (see README, "Read models").
    """

    def __init__(self, *metadatas: sa.MetaData) -> None:
        self.metadatas = metadatas
        self.db: Database | None = None

    def setup(self) -> None:
        self.db = Database(shared_engine(database_url_for(self.container)))
        create_schema(self.db.engine, *self.metadatas)

    def get_dependency(self, worker_ctx: Any) -> Database:
        assert self.db is not None
        return self.db
