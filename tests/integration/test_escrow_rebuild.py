"""Escrow's read model after a long random scenario: it equals a rebuild from
the log, and the books balance. Real PostgreSQL; the decisions are the
service's own (``services.escrow.domain``) recorded through its event log,
with live catch-ups at random moments between them."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from services.escrow import domain as D
from services.escrow import ledger as L
from services.escrow.domain import ContractTerms, Escrow, Payouts
from services.escrow.service import escrow_stream, payouts_stream
from services.escrow.views import (
    EscrowView,
    balances,
    credited_to_seller,
    holds,
    postings,
    refunds,
)
from shared.context import Context
from shared.errors import ServiceError
from shared.eventlog import ServiceEventLog
from shared.eventstore.sql import SqlEventStore
from shared.eventtool import table_rows
from shared.projection import ProjectionRunner
from shared.sql import create_sql_engine, temporary_database

pytestmark = pytest.mark.integration

SELLERS = ("ann", "bob", "cy")


def tables(engine: sa.Engine) -> dict[str, list[tuple]]:
    return {t.name: table_rows(engine, t) for t in EscrowView.metadata.sorted_tables}


def answer_refund(state: Escrow, _contract: ContractTerms, ok: bool, step: int) -> Any:
    """The provider's answer to one refund of the contract, or a retry of one."""
    for refund in state.refunds.values():
        decided: list[D.EventSpec] = []
        if refund.status == "requested":
            outcome = (ok, f"re-{step}", "refund_failed", "no")
            decided = D.record_refund(state, refund.refund_id, refund.attempt, *outcome)
        elif refund.status == "failed":
            decided = D.retry_refund(state, refund.refund_id, max_attempts=3)
        if decided:
            return decided
    return []


def scenario(log: ServiceEventLog, live: ProjectionRunner, rng: random.Random, steps: int) -> None:
    contracts = [
        ContractTerms(
            str(uuid.uuid4()),
            f"buyer{i % 4}",
            SELLERS[i % 3],
            "active",
            "USD",
            {f"m{j}": rng.randint(1, 500_000) for j in range(rng.randint(1, 4))},
            frozenset(),
        )
        for i in range(100)
    ]

    def run(contract: ContractTerms, decide: Callable[..., Any], *args: Any) -> None:
        stream = escrow_stream(contract.contract_id)
        log.command(stream, D.evolve, None, lambda s: decide(s or Escrow(), contract, *args))

    for step in range(steps):
        c = rng.choice(contracts)
        m = rng.choice(sorted(c.amounts))
        cause = f"cause-{step}"
        action = rng.choice(
            (
                "fund",
                "fund",
                "fund",
                "release",
                "release",
                "freeze",
                "settle",
                "refund",
                "payout",
                "answer",
            )
        )
        try:
            if action == "fund":
                charge = f"ch-{step}"
                card_ok = rng.random() < 0.85
                run(c, D.request_funding, c.buyer_id, [m], "pm", charge)
                run(c, D.record_charge, charge, card_ok, "card_declined", "no")
            elif action == "release":
                run(c, D.release, m, cause, 1_000)
                if rng.random() < 0.3:  # a redelivered approval
                    run(c, D.release, m, cause, 1_000)
            elif action == "freeze":
                run(c, D.freeze, m, cause)
            elif action == "settle":
                share = rng.randint(0, c.amounts[m])
                run(c, D.settle, m, share, cause, 1_000)
            elif action == "refund":
                run(c, D.refund_all, [m], "cancelled", cause)
            elif action == "answer":  # the provider's answer to a refund, or a retry
                run(c, answer_refund, rng.random() < 0.7, step)
            else:
                seller = rng.choice(SELLERS)
                live.catch_up()
                with live.engine.connect() as conn:
                    credited = credited_to_seller(conn, seller, "USD")
                stream = payouts_stream(seller)
                amount = rng.randint(1, 200_000)
                payout = D.request_payout
                args = (credited, seller, f"p-{step}", amount, "USD")
                log.command(stream, D.evolve_payouts, Payouts(), lambda s: payout(s, *args))  # noqa: B023
        except ServiceError:
            pass  # refused, as the rules say: nothing recorded
        if rng.random() < 0.2:
            live.catch_up()
    live.catch_up()


def visible_to_readers(store: SqlEventStore, timeout: float = 60) -> None:
    """Wait until readers see every event recorded. A reader sees a position
    only once every transaction older than it has ended, the shared server's
    other sessions' too, so without this the live catch-up may stop short of
    the log's tail that the rebuild, a moment later, reads."""
    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.max(store.events.c.position))).scalar_one()
    deadline = time.monotonic() + timeout
    while store.last_position() < recorded:
        assert time.monotonic() < deadline, "the log's last events never became visible"
        time.sleep(0.1)


def test_escrow_view_equals_its_rebuild_after_a_long_random_scenario(
    fresh_pg: str, postgres_server: str
):
    store = SqlEventStore(fresh_pg)
    log = ServiceEventLog(store, Context("c", "c", "system:test", "escrow"))
    with (
        temporary_database(postgres_server) as live_url,
        temporary_database(postgres_server) as rebuilt_url,
    ):
        live_engine, rebuilt_engine = create_sql_engine(live_url), create_sql_engine(rebuilt_url)
        live = ProjectionRunner(EscrowView(), store, live_engine)
        live.prepare()
        scenario(log, live, random.Random(20261127), steps=1500)
        visible_to_readers(store)
        live.catch_up()

        rebuilt = ProjectionRunner(EscrowView(), store, rebuilt_engine)
        assert rebuilt.rebuild() > 300
        live_tables = tables(live_engine)
        assert live_tables == tables(rebuilt_engine)
        assert len(live_tables["escrow_postings"]) > 300

        with live_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.sum(postings.c.amount))).scalar() == 0
            assert conn.execute(sa.select(sa.func.sum(balances.c.balance))).scalar() == 0
            negative = conn.execute(
                sa.select(balances).where(
                    balances.c.account.like("seller:%"), balances.c.balance < 0
                )
            ).all()
            assert negative == []
            for hold in conn.execute(sa.select(holds)).all():
                held = hold.funded - hold.released - hold.refunded
                assert (
                    held >= 0
                    and held
                    == conn.execute(
                        sa.select(balances.c.balance).where(
                            balances.c.account
                            == L.escrow_account(hold.contract_id, hold.milestone_id)
                        )
                    ).scalar_one()
                )
            released = conn.execute(
                sa.select(postings.c.event_id).where(postings.c.kind == "released").distinct()
            ).all()
            assert released, "the scenario released money at least once"
            statuses = {r.status for r in conn.execute(sa.select(refunds)).all()}
            assert statuses == {"requested", "succeeded", "failed"}
        live_engine.dispose()
        rebuilt_engine.dispose()
    store.close()


def test_fifty_concurrent_release_requests_release_a_milestone_once(fresh_pg: str):
    """Fifty approvals of one milestone reach escrow at once (each a different
    event, as if redelivered or duplicated): one release is recorded."""
    import eventlet

    store = SqlEventStore(fresh_pg)
    log = ServiceEventLog(store, Context("c", "c", "system:test", "escrow"))
    contract = ContractTerms(
        str(uuid.uuid4()), "buyer", "seller", "active", "USD", {"m1": 123_457}, frozenset()
    )
    stream = escrow_stream(contract.contract_id)

    def run(decide: Callable[..., Any], *args: Any) -> None:
        log.command(stream, D.evolve, None, lambda s: decide(s or Escrow(), contract, *args))

    run(D.request_funding, "buyer", ["m1"], "pm", "ch")
    run(D.record_charge, "ch", True)

    def release(n: int) -> str:
        try:
            run(D.release, "m1", f"approval-{n}", 1_000)
            return "ok"
        except ServiceError as exc:  # StaleState after its retries: a 409 to the caller
            return type(exc).__name__

    pool = eventlet.GreenPool(50)
    outcomes = list(pool.imap(release, range(50)))
    released = [e for e in store.read_stream(stream) if e.type == "EscrowReleased"]
    assert len(released) == 1, outcomes
    assert (released[0].data["amount"], released[0].data["fee"]) == (123_457, 12_346)
    assert set(outcomes) <= {"ok", "StaleState"}
    store.close()
