"""``Idempotency-Key``: a retried POST gets the first attempt's answer.

The first request with a key records it as pending, runs, and stores its
answer; a repeat within the TTL (24 h by default) gets that answer replayed.
The same key with a different request is a 422; a repeat while the first is
still running is a 409. A pending record older than ``PENDING_TIMEOUT``
belongs to a request that died (the gateway was killed): it is taken over
(``IDEMPOTENCY_PENDING_SECONDS``, 60 by default: longer than any request).
Answers with a 5xx status are not stored, so the client's retry runs anew.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Engine
from werkzeug.wrappers import Request

from shared.config import settings
from shared.database import create_schema, database_url_for
from shared.errors import Conflict, InvalidInput
from shared.jsonready import aware
from shared.sql import insert_for, shared_engine, write_transaction

PENDING_TIMEOUT = timedelta(seconds=60)
MAX_KEY_LENGTH = 200

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
    parts = [f"{name}={value}".encode() for name, value in sorted(request.form.items(multi=True))]
    for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
        content = upload.stream.read()
        upload.stream.seek(0)
        digest = hashlib.sha256(content).hexdigest()
        parts.append(f"{name}:{upload.filename}:{upload.mimetype}:{digest}".encode())
    return fingerprint(request.method, request.full_path, b"\n".join(parts))


class IdempotencyStore:
    def __init__(
        self, engine: Engine, ttl: timedelta, pending_timeout: timedelta = PENDING_TIMEOUT
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.pending_timeout = pending_timeout
        self._insert = insert_for(engine)

    def begin(self, scope: str, key: str, print_: str) -> StoredAnswer | None:
        """None: go ahead (the key is now pending). Otherwise the stored answer."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(
                "the Idempotency-Key header must be 1 to 200 characters",
                {"fields": {"Idempotency-Key": ["Invalid length."]}},
            )
        now = datetime.now(UTC)
        t = idempotency_keys
        with write_transaction(self.engine) as conn:
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
            created = aware(row.created_at)
            expired = created < now - self.ttl
            abandoned = row.state == "pending" and created < now - self.pending_timeout
            if expired or abandoned:
                conn.execute(
                    t.update()
                    .where(t.c.scope == scope, t.c.key == key)
                    .values(
                        fingerprint=print_, state="pending", status=None, body=None, created_at=now
                    )
                )
                return None
        if row.fingerprint != print_:
            raise InvalidInput(
                "this Idempotency-Key was used for a different request",
                {"reason": "idempotency_key_reused"},
            )
        if row.state == "pending":
            raise Conflict(
                "a request with this Idempotency-Key is still in progress; retry shortly",
                {"reason": "idempotency_key_in_progress"},
            )
        return StoredAnswer(row.status, row.content_type, row.body)

    def complete(self, scope: str, key: str, answer: StoredAnswer) -> None:
        t = idempotency_keys
        with write_transaction(self.engine) as conn:
            conn.execute(
                t.update()
                .where(t.c.scope == scope, t.c.key == key)
                .values(
                    state="done",
                    status=answer.status,
                    content_type=answer.content_type,
                    body=answer.body,
                )
            )

    def abandon(self, scope: str, key: str) -> None:
        t = idempotency_keys
        with write_transaction(self.engine) as conn:
            conn.execute(t.delete().where(t.c.scope == scope, t.c.key == key))


class Idempotency(DependencyProvider):
    """Injects the gateway's :class:`IdempotencyStore` (in its own database)."""

    def setup(self) -> None:
        engine = shared_engine(database_url_for(self.container))
        create_schema(engine, metadata)
        ttl = timedelta(hours=settings().idempotency_ttl_hours)
        pending = timedelta(seconds=settings().idempotency_pending_seconds)
        self.store = IdempotencyStore(engine, ttl, pending)

    def get_dependency(self, worker_ctx: Any) -> IdempotencyStore:
        return self.store
