"""Newest-first keyset paging: every row once, in order, ties broken by the key,
and a page never shifts when rows are added before it is read."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.errors import InvalidInput
from shared.pagination import encode_cursor, newest_first

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("thing_id", sa.String, primary_key=True),
    sa.Column("made_at", sa.DateTime(timezone=True)),
)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def conn():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        # Two pairs share a timestamp: the key orders them.
        for thing_id, minutes in (("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 2)):
            connection.execute(
                things.insert().values(thing_id=thing_id, made_at=T0 + timedelta(minutes=minutes))
            )
        yield connection


def pages(conn, limit: int, added_after_first: str | None = None) -> list[list[str]]:
    query = sa.select(things)
    seen, cursor = [], None
    while True:
        page, cursor = newest_first(conn, query, things.c.made_at, things.c.thing_id, limit, cursor)
        seen.append([r.thing_id for r in page])
        if added_after_first:
            conn.execute(
                things.insert().values(thing_id=added_after_first, made_at=T0 + timedelta(hours=1))
            )
            added_after_first = None
        if cursor is None:
            return seen


def test_pages_run_newest_first_with_ties_broken_by_the_key(conn):
    assert pages(conn, 2) == [["e", "d"], ["c", "b"], ["a"]]
    assert pages(conn, 5) == [["e", "d", "c", "b", "a"]]


def test_a_row_added_meanwhile_does_not_shift_the_next_pages(conn):
    assert pages(conn, 2, added_after_first="z") == [["e", "d"], ["c", "b"], ["a"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        encode_cursor({"at": "yesterday", "id": "a"}),
        encode_cursor({"id": "a"}),
        encode_cursor({"at": T0.isoformat()}),
    ],
)
def test_a_forged_cursor_is_invalid_input(conn, cursor):
    with pytest.raises(InvalidInput) as refused:
        newest_first(conn, sa.select(things), things.c.made_at, things.c.thing_id, 2, cursor)
    assert "cursor" in refused.value.details["fields"]
