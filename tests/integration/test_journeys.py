"""Whole journeys through the HTTP API against the marketplace as ``make run``
starts it: every service, the relay and the gateway as their own processes."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue

from shared.schemas import load_all_event_schemas, registry
from shared.testing import free_port, fresh_postgres_database
from tests.integration.journey import journey
from tests.integration.stack import PASSWORD, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONCURRENT_JOURNEYS = int(os.environ.get("JOURNEYS", "50"))


def stack_env(tmp_path: Path, amqp_uri: str, review_seconds: float, **extra: str) -> dict[str, str]:
    env = {
        "VAR_DIR": str(tmp_path / "var"),
        "GATEWAY_PORT": str(free_port()),
        "AMQP_URI": amqp_uri,
        "LOG_FORMAT": "json",
        "CONTRACT_REVIEW_DAYS": str(review_seconds / 86_400),
        "CONTRACT_REVIEW_CHECK_SECONDS": "1",
        "REVIEW_REVEAL_CHECK_SECONDS": "1",
        "ESCROW_FUNDING_RECOVERY_SECONDS": "5",
        "CONSUMER_RETRY_DELAY_MS": "500",
        "JWT_SECRET": "journey-secret-" + "x" * 40,
        "SIGN_UPS_PER_ADDRESS_HOUR": "100000",  # every client of these tests is 127.0.0.1
        **extra,
    }
    (tmp_path / "var").mkdir(exist_ok=True)
    return env


@pytest.fixture(params=["postgres", "sqlite"])
def launched(request, tmp_path: Path, amqp_uri: str, postgres_server: str) -> Iterator[Stack]:
    extra = {}
    with fresh_postgres_database(postgres_server) as url:
        if request.param == "postgres":
            extra["EVENT_STORE_URL"] = url
        stack = Stack(tmp_path, stack_env(tmp_path, amqp_uri, review_seconds=8, **extra))
        for key in ("EVENT_STORE_URL", "RELAY_CHECKPOINT_URL", "DATABASE_URL"):
            if key not in extra:
                stack.env.pop(key, None)
        stack.launch()
        try:
            yield stack
        finally:
            stack.stop_all()


SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")


def listen_to_every_exchange(amqp_uri: str, name: str) -> Queue:
    """What any consumer of the broker could read: every service's events."""
    queue = Queue(name, durable=False, auto_delete=False)
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        queue(channel).declare()
        for service in SERVICES:
            exchange = Exchange(f"{service}.events", type="topic", durable=True)
            exchange(channel).declare()
            channel.queue_bind(name, exchange=exchange.name, routing_key="#")
    return queue


def drain(amqp_uri: str, queue: Queue) -> list[bytes]:
    bodies = []
    with Connection(amqp_uri) as conn:
        bound = queue(conn.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            body = message.body
            bodies.append(body.encode() if isinstance(body, str) else body)
        bound.delete()
    return bodies


def keys_in(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def test_the_whole_buyer_and_seller_journey(launched: Stack, amqp_uri: str):
    queue = listen_to_every_exchange(amqp_uri, f"test-every-event-{free_port()}")
    failures: Counter = Counter()
    result = journey(launched.url, failures, grant_admin=launched.grant_admin)
    assert not failures, f"no fault was injected, yet requests failed: {failures}"
    verified = launched.cli("verify", "all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "differs" not in verified.stdout
    # 150,000 and 130,000 paid, 10,000 of the disputed 20,000: each less 10 %.
    assert result["paid_out"] == 261_000 and result["refunded"] == 10_000

    # Only published types and fields reached the broker: no secret, no hash.
    bodies = drain(amqp_uri, queue)
    load_all_event_schemas()
    sensitive = {
        field
        for event_type in registry.event_types
        for version in registry._types[event_type].values()
        for field in version.sensitive
    }
    assert sensitive >= {"password_hash", "token_hash"}
    seen = Counter()
    for body in bodies:
        assert b"$argon2" not in body and PASSWORD.encode() not in body
        envelope = orjson.loads(body)
        seen[envelope["event_type"]] += 1
        assert registry.is_published(envelope["event_type"]), envelope["event_type"]
        assert "stream" not in envelope
        assert not keys_in(envelope["data"]) & sensitive, envelope
    assert seen["UserRegistered"] >= 2 and seen["MilestoneApproved"] >= 1, seen
    assert not seen.keys() & {"SessionStarted", "PasswordChanged", "EmailClaimed"}


@pytest.fixture
def postgres_stack(tmp_path: Path, amqp_uri: str, postgres_server: str) -> Iterator[Stack]:
    with fresh_postgres_database(postgres_server) as url:
        stack = Stack(
            tmp_path, stack_env(tmp_path, amqp_uri, review_seconds=45, EVENT_STORE_URL=url)
        )
        stack.url_db = url
        stack.start_all()
        try:
            yield stack
        finally:
            stack.stop_all()


def check_totals(stack: Stack, results: list[dict]) -> None:
    """Every ledger balances, every projection equals its rebuild, and each
    journey's money moved exactly once."""
    engine = sa.create_engine(stack.url_db)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.text(
                    "SELECT event_type, count(*) FROM events WHERE event_type IN "
                    "('EscrowFunded', 'EscrowReleased', 'PayoutRequested', 'ReviewSubmitted', "
                    "'ContractCompleted') GROUP BY event_type"
                )
            ).all()
        )
    engine.dispose()
    contracts = len(results)
    assert counts.get("EscrowFunded") == 2 * contracts, counts
    assert counts.get("EscrowReleased") == 2 * contracts, counts
    assert counts.get("PayoutRequested") == contracts, counts
    assert counts.get("ContractCompleted") == contracts, counts
    gateway_db = Path(stack.env["VAR_DIR"]) / "gateway.sqlite"
    ledger = sa.create_engine(f"sqlite:///{gateway_db}")
    with ledger.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT COALESCE(SUM(amount), 0) FROM escrow_postings")).scalar()
            == 0
        )
        assert (
            conn.execute(sa.text("SELECT COALESCE(SUM(balance), 0) FROM escrow_balances")).scalar()
            == 0
        )
        negative = conn.execute(
            sa.text(
                "SELECT count(*) FROM escrow_balances WHERE account LIKE 'seller:%' AND balance < 0"
            )
        ).scalar()
        assert negative == 0
    ledger.dispose()
    verified = stack.cli("verify", "all")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_many_journeys_at_once(postgres_stack: Stack):
    failures: Counter = Counter()
    with ThreadPoolExecutor(CONCURRENT_JOURNEYS) as pool:
        results = list(
            pool.map(
                lambda _: journey(postgres_stack.url, failures, full=False),
                range(CONCURRENT_JOURNEYS),
            )
        )
    assert len({r["contract_id"] for r in results}) == CONCURRENT_JOURNEYS
    check_totals(postgres_stack, results)
