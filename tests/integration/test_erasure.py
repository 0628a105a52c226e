"""The right to erasure and to a copy, against every process, RabbitMQ and PostgreSQL.

A buyer who went through the whole journey downloads a copy of their data,
then erases themself. Afterwards nothing the marketplace keeps or sends says
who they were: not the event store's tables, not any read-model database,
not an export in any format, not the broker (what is published after, a
replay, the relay publishing the whole log again). The money and the
contracts are intact, the ledgers balance, and every projection still
equals its rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue

from shared.schemas import load_all_event_schemas, registry
from shared.testing import free_port, fresh_postgres_database
from tests.integration.helpers import wait_until
from tests.integration.journey import SELLER_REVIEW, journey
from tests.integration.stack import PASSWORD, Client, Stack
from tests.integration.test_journeys import SERVICES, drain, listen_to_every_exchange, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUYER_MESSAGE = "Can you show similar work?"  # what the buyer wrote in the journey


@pytest.fixture
def stack(tmp_path: Path, amqp_uri: str, postgres_server: str) -> Iterator[Stack]:
    with fresh_postgres_database(postgres_server) as url:
        stack = Stack(
            tmp_path, stack_env(tmp_path, amqp_uri, review_seconds=8, EVENT_STORE_URL=url)
        )
        stack.url_db = url
        stack.start_all()
        try:
            yield stack
        finally:
            stack.stop_all()


def postgres_rows(url: str) -> Iterator[tuple[str, str]]:
    """(table, row as text) of every table in the event store's database."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for table in list(tables):
            for (row,) in conn.execute(sa.text(f'SELECT t::text FROM "{table}" t')):
                yield table, row
    engine.dispose()


def sqlite_rows(path: Path) -> Iterator[tuple[str, str]]:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        tables = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        for table in list(tables.scalars()):
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                yield (
                    f"{path.name}:{table}",
                    repr(
                        tuple(
                            v.decode(errors="replace") if isinstance(v, bytes) else v for v in row
                        )
                    ),
                )
    engine.dispose()


def found(needles: list[str], haystack: Iterator[tuple[str, str]]) -> list[str]:
    return [
        f"{where}: {needle!r}" for where, text in haystack for needle in needles if needle in text
    ]


def test_an_erased_user_is_gone_and_the_books_still_balance(stack: Stack, amqp_uri: str):
    result = journey(stack.url)
    buyer_id, seller_id = result["buyer_id"], result["seller_id"]
    company = f"Acme {result['tag']}"
    needles = [result["buyer_email"], company, BUYER_MESSAGE, SELLER_REVIEW["text"]]
    buyer = Client(stack.url)
    buyer.email = result["buyer_email"]
    buyer.log_in()

    # A copy first: everything the views hold of them, their own words included.
    copy = buyer.ok("GET", "/me/export")
    text = orjson.dumps(copy).decode()
    for needle in needles:
        assert needle in text, needle
    assert copy["profile"]["account"]["email"] == result["buyer_email"]
    assert {m["text"] for m in copy["messages"]} >= {BUYER_MESSAGE, "Here is one."}
    assert [r["text"] for r in copy["reviews_written"]] == [SELLER_REVIEW["text"]]
    assert copy["contracts"][0]["contract_id"] == result["contract_id"]
    assert copy["payments"]["charges"] and copy["projects"] and copy["proposals"]

    # Everything published from now on, whoever could read the broker.
    queue = listen_to_every_exchange(amqp_uri, f"test-erasure-{free_port()}")
    erased = buyer.ok("DELETE", "/me")
    assert erased == {"user_id": buyer_id, "erased": True}

    # Every service hears of it and deletes its keys; the views show it.
    keys = sa.create_engine(stack.url_db)

    def every_service_forgot() -> bool:
        with keys.connect() as conn:
            forgotten = conn.execute(
                sa.text("SELECT service FROM personal_keys WHERE person_id = :p AND key IS NULL"),
                {"p": buyer_id},
            ).scalars()
            return set(forgotten) >= set(SERVICES)

    wait_until(every_service_forgot, timeout=60, interval=0.5, what="every service's keys erased")
    with keys.connect() as conn:
        left = conn.execute(
            sa.text("SELECT count(*) FROM personal_keys WHERE person_id = :p AND key IS NOT NULL"),
            {"p": buyer_id},
        ).scalar()
    assert left == 0
    keys.dispose()
    seller = Client(stack.url)
    seller.email = result["seller_email"]
    seller.log_in()
    profile = seller.see(f"/users/{buyer_id}/profile", lambda p: p.get("erased") is True)
    assert profile["buyer"] is None and "email" not in profile
    contract = seller.see(
        f"/contracts/{result['contract_id']}",
        lambda c: c["status"] == "completed",
    )
    assert [m["status"] for m in contract["milestones"]] == ["paid", "paid"]
    reviews = seller.ok("GET", f"/contracts/{result['contract_id']}/reviews")["items"]
    assert {r["reviewer_id"]: r["text"] for r in reviews} == {
        buyer_id: "[erased]",  # the rating stays, the words are gone
        seller_id: "Clear brief, fast payments.",
    }

    # They can no longer log in, nor refresh a session.
    login = buyer.post("/auth/login", {"email": result["buyer_email"], "password": PASSWORD})
    assert login.status_code == 401, login.text

    # The relay publishes the whole log again (a reset checkpoint): nothing of them.
    stack.kill("relay")
    engine = sa.create_engine(stack.url_db)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM checkpoints WHERE name = 'relay'"))
    stack.start("relay")
    # ... and an analyst replays it into their own exchange.
    replay = Queue(f"test-replay-{free_port()}", durable=False, auto_delete=False)
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        exchange = Exchange("analysis.replay", type="topic", durable=True)
        exchange(channel).declare()
        replay(channel).declare()
        channel.queue_bind(replay.name, exchange=exchange.name, routing_key="#")
    replayed = stack.cli("publish", "--exchange", "analysis.replay")
    assert replayed.returncode == 0, replayed.stderr

    with engine.connect() as conn:
        types = conn.execute(sa.text("SELECT event_type FROM events")).scalars().all()
    load_all_event_schemas()
    total, public = len(types), sum(1 for t in types if registry.is_published(t))

    def relay_done() -> bool:
        with engine.connect() as conn:
            position = conn.execute(
                sa.text("SELECT position FROM checkpoints WHERE name = 'relay'")
            ).scalar()
            last = conn.execute(sa.text("SELECT max(position) FROM events")).scalar()
        return position is not None and position >= last

    wait_until(relay_done, timeout=120, interval=0.5, what="the relay publishing the log again")
    time.sleep(2)  # what the services do with the replayed messages settles
    published = drain(amqp_uri, queue)
    assert len(published) >= public, (len(published), public)
    replayed_bodies = drain(amqp_uri, replay)
    assert len(replayed_bodies) == total
    broker = [("published", body.decode(errors="replace")) for body in published + replayed_bodies]
    assert any("PersonalDataErased" in body for _, body in broker)

    # Exports in every format.
    exports = []
    for fmt in ("jsonl", "csv", "parquet"):
        out = stack.directory / f"export.{fmt}"
        done = stack.cli("export", "--format", fmt, "--output", str(out))
        assert done.returncode == 0, done.stderr
        if fmt == "parquet":
            exports.append((out.name, repr(pq.read_table(out).to_pylist())))
            exports.append((out.name + " bytes", out.read_bytes().decode(errors="replace")))
        else:
            exports.append((out.name, out.read_text()))
    assert "[erased]" in exports[0][1]

    # The projections equal their rebuild, and the books balance.
    verified = stack.cli("verify", "all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    gateway_db = Path(stack.env["VAR_DIR"]) / "gateway.sqlite"
    ledger = sa.create_engine(f"sqlite:///{gateway_db}")
    with ledger.connect() as conn:
        postings = conn.execute(sa.text("SELECT COALESCE(SUM(amount), 0) FROM escrow_postings"))
        assert postings.scalar() == 0
        balances = conn.execute(sa.text("SELECT COALESCE(SUM(balance), 0) FROM escrow_balances"))
        assert balances.scalar() == 0
        paid = conn.execute(
            sa.text("SELECT balance FROM escrow_balances WHERE account = :a"),
            {"a": f"seller:{seller_id}"},
        ).scalar()
    ledger.dispose()
    assert paid == 0  # paid out in full

    # Nowhere: the event store's tables, every read-model database, exports, the broker.
    databases = sorted(Path(stack.env["VAR_DIR"]).glob("*.sqlite"))
    assert {p.stem for p in databases} >= {"gateway", "messaging", "reputation"}, databases
    places = [
        *postgres_rows(stack.url_db),
        *(row for path in databases for row in sqlite_rows(path)),
        *exports,
        *broker,
    ]
    assert not found(needles, iter(places)), found(needles, iter(places))
    # (the seller is not erased: their words are still there)
    assert any("Here is one." in text for _, text in places)
    engine.dispose()
