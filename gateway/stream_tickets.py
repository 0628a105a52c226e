"""Tickets for the live notification stream, which a browser opens with
``EventSource``: that cannot send an ``Authorization`` header, and a token in
the URL would sit in every proxy's access log for as long as it is valid.

``POST /me/notifications/stream-ticket`` (authenticated as usual) gives a
ticket; ``GET /me/notifications/stream?ticket=`` redeems it. A ticket is
random, lives ``TICKET_SECONDS``, works once, and only its hash is kept (in the
gateway's own database, so any gateway pod can redeem it). It carries the
session it was made for, so the stream can end with the session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, fields
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Engine

from shared.auth import Principal
from shared.context import roles_of
from shared.database import create_schema, database_url_for
from shared.errors import Unauthorized
from shared.jsonready import aware
from shared.sql import shared_engine, write_transaction

TICKET_SECONDS = 30

metadata = sa.MetaData()
stream_tickets = sa.Table(
    "stream_tickets",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False),
    # When the token the ticket was asked with was issued: a session ending
    # after it ends the stream too (gateway.sessions).
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


class TicketResponse(Schema):
    ticket = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class StreamQuery(Schema):
    ticket = fields.String(load_default=None, validate=lambda t: 0 < len(t) <= 100)


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class StreamTickets:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def issue(self, principal: Principal, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        ticket = secrets.token_urlsafe(32)
        t = stream_tickets
        with write_transaction(self.engine) as conn:
            conn.execute(t.delete().where(t.c.expires_at < now))  # the table stays small
            conn.execute(
                t.insert().values(
                    digest=_digest(ticket),
                    user_id=principal.user_id,
                    roles=",".join(principal.roles),
                    session_id=principal.session_id,
                    issued_at=principal.issued_at,
                    expires_at=now + timedelta(seconds=TICKET_SECONDS),
                )
            )
        return ticket

    def redeem(self, ticket: str, now: datetime | None = None) -> Principal:
        """The principal the ticket was issued to; it cannot be redeemed again."""
        now = now or datetime.now(UTC)
        t = stream_tickets
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                sa.select(t).where(t.c.digest == _digest(ticket)).with_for_update()
            ).first()
            if row is not None:
                conn.execute(t.delete().where(t.c.digest == row.digest))
        if row is None or aware(row.expires_at) <= now:
            raise Unauthorized(
                "the stream ticket is unknown, used or expired: ask for a new one",
                {"reason": "invalid_ticket"},
            )
        roles = roles_of(row.roles)
        return Principal(
            str(row.user_id), roles, str(row.session_id), issued_at=float(row.issued_at)
        )


class Tickets(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects the gateway's :class:`StreamTickets` (in its own database)."""

    def setup(self) -> None:
        engine = shared_engine(database_url_for(self.container))
        create_schema(engine, metadata)
        self.tickets = StreamTickets(engine)

    def get_dependency(self, worker_ctx: Any) -> StreamTickets:
        return self.tickets
