"""Hourly billing over random weeks (hypothesis), across contracts and escrow.

The simulation plays a contract's weeks day by day: the seller records random
time, the buyer changes the limit, pauses, resumes, disputes, an administrator
resolves, either party ends it; the timer closes weeks and approves invoices,
and escrow's ledger charges and releases what is approved. Whatever happened,
the charged total is what the approved hours cost, no week is above its limit,
the ledger balances, and a replay of the log decides nothing new. It lives
here, not in either service, because it plays both services' pure rules
together (no service imports another's code).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.contracts import hourly as H
from services.contracts.tests.test_hourly import CONTRACT, REVIEW, START, at
from services.escrow import domain as escrow
from services.escrow import ledger as L
from shared.errors import ServiceError

action = st.one_of(
    st.tuples(st.just("time"), st.integers(0, 6), st.integers(0, 600)),
    st.tuples(st.just("limit"), st.integers(1, 20), st.just(0)),
    st.tuples(st.just("pause"), st.booleans(), st.just(0)),
    st.tuples(st.just("dispute"), st.integers(0, 6), st.just(0)),
    st.tuples(st.just("resolve"), st.integers(0, 6), st.integers(0, 100)),
    st.tuples(st.just("approve"), st.integers(0, 6), st.just(0)),
    st.tuples(st.just("end"), st.just(0), st.just(0)),
)
days = st.lists(st.lists(action, max_size=4), min_size=1, max_size=35)


@dataclass(frozen=True)
class Seen:
    """An event as a fold reads it."""

    type: str
    data: dict[str, Any]


class Escrow:
    """Escrow's side, with its own decisions and ledger: an approved invoice is
    charged to the contract's card and released; a resolved one for the
    seller's share only. Each notice is delivered twice (at-least-once)."""

    def __init__(self) -> None:
        self.state = escrow.Escrow()
        self.terms = escrow.ContractTerms(
            CONTRACT, "buyer", "seller", "active", "USD", payment_method="pm_card_visa"
        )
        self.charged = 0

    def record(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for event_type, data in events:
            self.state = escrow.evolve(self.state, Seen(event_type, data))  # type: ignore[arg-type]

    def on(self, h: H.Hourly, event_type: str, data: dict[str, Any]) -> list:
        if event_type == "InvoiceApproved":
            amount = data["amount"]
        elif event_type == "InvoiceDisputeResolved":
            amount = data["to_seller"]
        else:
            return []
        invoice, answer = data["invoice_id"], []
        charge_id = f"charge:{invoice}"
        for _ in range(2):  # a redelivered notice charges nothing more
            self.record(
                escrow.request_invoice_charge(self.state, self.terms, invoice, amount, charge_id)
            )
            outcome = escrow.record_charge(self.state, self.terms, charge_id, True, fee_bps=1_000)
            self.record(outcome)
            for moved_type, moved in outcome:
                if moved_type == "EscrowFunded":
                    self.charged += moved["amount"]
                if moved_type == "EscrowReleased":
                    answer += H.mark_paid(h, invoice, moved["amount"], moved["fee"])
        return answer

    @property
    def ledger(self) -> L.Ledger:
        return self.state.ledger


@settings(max_examples=150, deadline=None)
@given(days=days, rate=st.integers(1, 20_000), limit=st.integers(1, 20))
def test_billing_over_random_weeks(days: list, rate: int, limit: int):
    h = H.Hourly(rate, limit, START)
    log: list[tuple[str, dict[str, Any]]] = []
    money = Escrow()

    def record(events: list) -> None:
        nonlocal h
        queue = list(events)
        while queue:
            event_type, data = queue.pop(0)
            log.append((event_type, data))
            h = H.evolve(h, event_type, data)
            queue += money.on(h, event_type, data)

    for n, actions in enumerate(days):
        today = START + timedelta(days=n)
        now = at(today)
        record(H.close_weeks(h, CONTRACT, now, REVIEW))
        record(H.auto_approvals(h, now, "USD", "seller"))
        for name, a, b in actions:
            try:
                if name == "time":
                    day = today - timedelta(days=a)
                    record(H.record_time(h, day, b, "memo", today))
                elif name == "limit":
                    record(H.change_limit(h, a, today))
                elif name == "pause":
                    record(H.pause(h, a, today))
                elif name == "dispute":
                    record(H.dispute_invoice(h, a, "buyer", "why"))
                elif name == "resolve":
                    amount = h.invoices[a].amount if a in h.invoices else 0
                    record(H.resolve_dispute(h, a, "admin", amount * b // 100, ""))
                elif name == "approve":
                    record(H.approve_invoice(h, a, "USD", "seller"))
                elif name == "end":
                    record(H.end(h, CONTRACT, "buyer", "done", now, REVIEW))
            except ServiceError:
                pass  # refused: nothing recorded

    # Let every review period run out.
    later = at(START + timedelta(days=len(days) + 30))
    record(H.close_weeks(h, CONTRACT, later, REVIEW))
    record(H.auto_approvals(h, later + timedelta(seconds=REVIEW), "USD", "seller"))

    statuses = {i.status for i in h.invoices.values()}
    event(f"settled after a dispute: {'settled' in statuses}")
    event(f"ended: {h.ended_week is not None}")
    event(f"paused a week: {any(H.paused_in(h, w) for w in h.invoices)}")
    # No week above its limit, none with time while paused; each invoice is its hours' price.
    for week, invoice in h.invoices.items():
        assert invoice.minutes <= H.limit_for(h, week) * 60
        if H.paused_in(h, week):
            assert invoice.minutes == 0
        assert invoice.amount == H.amount_for(invoice.minutes, rate)
        assert invoice.invoice_id == H.invoice_id(CONTRACT, week)
    # Weeks are billed in order, none twice, none skipped.
    assert sorted(h.invoices) == list(range(len(h.invoices)))
    # The charged total is what the approved hours cost, plus what disputes granted.
    approved = sum(i.amount for i in h.invoices.values() if i.status == "paid")
    granted = sum(i.to_seller for i in h.invoices.values() if i.status == "settled")
    assert money.charged == approved + granted
    assert -money.ledger.balance(L.CARD, "USD") == money.charged
    # One charge per invoice with something to charge, however often escrow heard of it.
    owed = [i for i in h.invoices.values() if i.status == "paid" or i.to_seller]
    assert len(money.state.charges) == len(owed)
    assert all(c.status == "succeeded" for c in money.state.charges.values())
    assert money.charged <= sum(i.amount for i in h.invoices.values())
    # Only disputed weeks are left unpaid; every invoice paid once.
    for invoice in h.invoices.values():
        assert invoice.status in ("empty", "paid", "settled", "disputed")
    # The ledger balances: every movement sums to zero.
    totals: dict[str, int] = defaultdict(int)
    for (_, currency), amount in money.ledger.balances.items():
        totals[currency] += amount
    assert all(v == 0 for v in totals.values())
    seller = money.ledger.balance(L.seller_account("seller"), "USD")
    assert seller + money.ledger.balance(L.FEES, "USD") == money.charged
    # A replay of the log folds the same state and decides nothing new.
    replayed = H.Hourly(rate, limit, START)
    for event_type, data in log:
        replayed = H.evolve(replayed, event_type, data)
    assert replayed == h
    assert H.close_weeks(replayed, CONTRACT, later, REVIEW) == []
    assert H.auto_approvals(replayed, later, "USD", "seller") == []
    assert H.from_json(H.to_json(h)) == h
    if h.ended_week is not None and not any(i.status == "disputed" for i in h.invoices.values()):
        assert H.finished(h)
