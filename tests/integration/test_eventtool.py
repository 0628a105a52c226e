"""marketplace-events, every command, on a generated log in PostgreSQL."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue
from marshmallow import Schema, fields

from shared.eventstore import EventMetadata, NewEvent, StreamState
from shared.eventstore.sql import SqlEventStore
from shared.eventtool import main
from shared.schemas import registry
from shared.sql import create_sql_engine
from tests.integration.helpers import thing
from tests.integration.test_projection import ThingTotals

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@registry.event("PriceQuoted", version=1)
class PriceQuotedV1(Schema):
    amount = fields.Integer(required=True)


@registry.event("PriceQuoted", version=2, upcast=lambda d: {**d, "currency": "USD"})
class PriceQuotedV2(Schema):
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)


def run(*argv: str) -> tuple[int, str]:
    out = io.BytesIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue().decode()


def lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line]


@pytest.fixture
def log(fresh_pg: str) -> dict[str, Any]:
    """A log of 300 ThingHappened across 10 things, old-version quotes, and a
    registration carrying a password hash."""
    store = SqlEventStore(fresh_pg)
    for i in range(300):
        store.append(f"thing-t{i % 10}", [thing(amount=i, thing_id=f"t{i % 10}")])
    meta = EventMetadata.root("user-1", source="quotes")
    store.append("quote-1", [NewEvent("PriceQuoted", {"amount": 5}, meta, schema_version=1)])
    user = {
        "user_id": "u1",
        "email": "a@example.com",
        "password_hash": "$argon2id$secret",
        "roles": ["buyer"],
    }
    store.append(
        "user-u1",
        [registry.new_event("UserRegistered", user, EventMetadata.root("u1", "identity"))],
        StreamState.NO_STREAM,
    )
    positions = [e.position for e in store.read_all()]
    store.close()
    return {"url": fresh_pg, "positions": positions}


def test_init_creates_an_empty_store(fresh_pg):
    code, out = run("--store", fresh_pg, "init")
    assert code == 0 and "event store ready: last position 0" in out


def test_streams_lists_categories_and_a_categorys_streams(log):
    code, out = run("--store", log["url"], "streams")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["thing"][1] == "300" and rows["quote"][1] == "1" and rows["user"][1] == "1"
    code, out = run("--store", log["url"], "streams", "--category", "thing")
    assert code == 0 and len(out.splitlines()) == 11
    assert run("--store", log["url"], "streams", "--category", "nope")[0] == 4


def test_read_one_stream_forwards_backwards_from_a_revision(log):
    code, out = run(
        "--store",
        log["url"],
        "read",
        "thing-t3",
        "--from-revision",
        "27",
        "--backwards",
        "--limit",
        "3",
    )
    assert code == 0
    assert [e["revision"] for e in lines(out)] == [27, 26, 25]
    assert [e["data"]["amount"] for e in lines(out)] == [273, 263, 253]
    assert run("--store", log["url"], "read", "thing-missing")[0] == 4


def test_export_upcasts_redacts_and_filters(log):
    code, out = run("--store", log["url"], "export")
    events = lines(out)
    assert code == 0 and len(events) == 302
    (quote,) = [e for e in events if e["event_type"] == "PriceQuoted"]
    assert quote["schema_version"] == 2 and quote["data"] == {"amount": 5, "currency": "USD"}
    (user,) = [e for e in events if e["event_type"] == "UserRegistered"]
    assert (
        user["data"]["password_hash"] == "[redacted]" and user["data"]["email"] == "a@example.com"
    )
    assert {"event_id", "stream", "revision", "position", "recorded_at", "metadata"} <= set(user)

    assert len(lines(run("--store", log["url"], "export", "--category", "thing")[1])) == 300
    assert len(lines(run("--store", log["url"], "export", "--type", "PriceQuoted")[1])) == 1
    first, last = log["positions"][10], log["positions"][19]
    ranged = lines(
        run(
            "--store",
            log["url"],
            "export",
            "--from-position",
            str(first),
            "--to-position",
            str(last),
        )[1]
    )
    assert [e["position"] for e in ranged] == log["positions"][10:20]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert lines(run("--store", log["url"], "export", "--since", future)[1]) == []
    assert len(lines(run("--store", log["url"], "export", "--until", future)[1])) == 302


def test_bad_selections_are_clear_errors(log, capsys):
    assert (
        run("--store", log["url"], "export", "--from-position", "10", "--to-position", "5")[0] == 2
    )
    assert "after --to-position" in capsys.readouterr().err
    assert run("--store", log["url"], "export", "--category", "unicorns")[0] == 4
    assert "unknown category unicorns" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        run("--store", log["url"], "export", "--since", "yesterday-ish")
    assert caught.value.code == 2
    assert run("--store", "postgresql://nobody@127.0.0.1:1/none", "streams")[0] == 3


def test_csv_and_parquet_exports_reproduce_the_live_projections_totals(log, tmp_path: Path):
    live = create_sql_engine(log["url"])
    from shared.projection import ProjectionRunner

    store = SqlEventStore(log["url"])
    runner = ProjectionRunner(ThingTotals(), store, live)
    runner.prepare()
    runner.catch_up()
    with live.connect() as conn:
        expected = dict(conn.execute(sa.text("SELECT thing_id, total FROM thing_totals")).all())
    store.close()

    for fmt in ("csv", "parquet"):
        path = tmp_path / f"things.{fmt}"
        code, _ = run(
            "--store",
            log["url"],
            "export",
            "--type",
            "ThingHappened",
            "--format",
            fmt,
            "--output",
            str(path),
        )
        assert code == 0 and path.stat().st_size > 0
        reader = "read_csv_auto" if fmt == "csv" else "read_parquet"
        totals = duckdb.sql(
            f"SELECT json_extract_string(data, '$.thing_id') AS thing, "
            f"sum(CAST(json_extract(data, '$.amount') AS BIGINT)) AS total "
            f"FROM {reader}('{path}') GROUP BY 1"
        ).fetchall()
        assert dict(totals) == expected


def test_follow_tails_new_events_until_interrupted(log):
    env = dict(os.environ, LOG_FORMAT="json")
    tail = subprocess.Popen(
        [str(BIN / "marketplace-events"), "--store", log["url"], "follow", "--category", "thing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        time.sleep(2.5)  # started, caught up to the end of the log
        store = SqlEventStore(log["url"])
        store.append("thing-live", [thing(amount=1000 + i, thing_id="live") for i in range(3)])
        store.append(
            "quote-2", [NewEvent("PriceQuoted", {"amount": 1}, EventMetadata.root("x"), 1)]
        )
        store.close()
        time.sleep(2)
    finally:
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=20)
    assert tail.returncode == 0, err
    assert [e["data"]["amount"] for e in lines(out.decode())] == [1000, 1001, 1002]


def test_publish_replays_into_an_analysts_exchange_not_a_live_one(log, amqp_uri: str):
    exchange = f"analysis-{uuid.uuid4().hex[:6]}"
    queue = Queue(
        f"{exchange}-q",
        Exchange(exchange, type="topic", durable=True),
        routing_key="#",
        auto_delete=True,
    )
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    code, out = run(
        "--store",
        log["url"],
        "publish",
        "--exchange",
        exchange,
        "--category",
        "quote",
        "--amqp-uri",
        amqp_uri,
        "--rate",
        "100",
    )
    assert code == 0 and "1 events published" in out
    with Connection(amqp_uri) as conn:
        message = queue(conn.default_channel).get(no_ack=True)
        queue(conn.default_channel).delete()
    body = orjson.loads(message.body)
    assert body["event_type"] == "PriceQuoted" and body["data"]["currency"] == "USD"
    assert (
        run(
            "--store", log["url"], "publish", "--exchange", "escrow.events", "--amqp-uri", amqp_uri
        )[0]
        == 2
    )


def test_rebuild_and_verify_a_registered_projection(log, postgres_server: str):
    from shared.testing import fresh_postgres_database

    with fresh_postgres_database(postgres_server) as views:
        code, out = run("--store", log["url"], "rebuild", "identity_profiles", "--database", views)
        assert code == 0 and "identity_profiles: 1 events applied" in out
        engine = create_sql_engine(views)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT email FROM users")).scalar() == "a@example.com"
        code, out = run("--store", log["url"], "verify", "identity_profiles", "--database", views)
        assert code == 0 and "equal to a rebuild" in out
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET email = 'tampered@example.com'"))
        code, out = run("--store", log["url"], "verify", "identity_profiles", "--database", views)
        assert code == 1
        assert "identity_profiles.users: 1 rows only live, 1 only rebuilt" in out
        assert "tampered@example.com" in out
        code, _ = run(
            "--store", log["url"], "rebuild", "identity_profiles", "--database", views, "--resume"
        )
        assert code == 0
        engine.dispose()
    assert run("--store", log["url"], "rebuild", "no_such_projection")[0] == 4
