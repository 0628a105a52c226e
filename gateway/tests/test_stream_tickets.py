"""Stream tickets: once, for their user and session, and only while fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.stream_tickets import TICKET_SECONDS, StreamTickets, metadata
from shared.auth import Principal
from shared.database import create_schema
from shared.errors import Unauthorized
from shared.sql import create_sql_engine

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ALICE = Principal("alice", ("seller",), "session-1")


@pytest.fixture
def tickets(tmp_path: Path) -> StreamTickets:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    create_schema(engine, metadata)
    return StreamTickets(engine)


def test_a_ticket_is_redeemed_once_for_whom_it_was_issued(tickets: StreamTickets):
    ticket = tickets.issue(ALICE, NOW)
    assert tickets.redeem(ticket, NOW + timedelta(seconds=1)) == ALICE
    with pytest.raises(Unauthorized):
        tickets.redeem(ticket, NOW + timedelta(seconds=2))
    with pytest.raises(Unauthorized):
        tickets.redeem("made-up", NOW)


def test_a_ticket_expires_and_only_its_hash_is_kept(tickets: StreamTickets):
    ticket = tickets.issue(ALICE, NOW)
    with tickets.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT * FROM stream_tickets").all()
    assert ticket not in str(stored)
    with pytest.raises(Unauthorized):
        tickets.redeem(ticket, NOW + timedelta(seconds=TICKET_SECONDS))
