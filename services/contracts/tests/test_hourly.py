"""Hourly billing rules: examples, then properties over random weeks (hypothesis).

The simulation plays a contract's weeks day by day: the seller records random
time, the buyer changes the limit, pauses, resumes, disputes, an administrator
resolves, either party ends it; the timer closes weeks and approves invoices,
and escrow's ledger charges and releases what is approved. Whatever happened,
the charged total is what the approved hours cost, no week is above its limit,
the ledger balances, and a replay of the log decides nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.contracts import hourly as H
from services.escrow import domain as escrow
from services.escrow import ledger as L
from shared.errors import Conflict, ServiceError

START = date(2027, 1, 4)
CONTRACT = "c-1"
REVIEW = 3 * 86_400


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def fold(events: list[tuple[str, dict[str, Any]]], rate: int = 6_000, limit: int = 10) -> H.Hourly:
    h = H.Hourly(rate, limit, START)
    for event_type, data in events:
        h = H.evolve(h, event_type, data)
    return h


def apply(h: H.Hourly, events: list[tuple[str, dict[str, Any]]]) -> H.Hourly:
    for event_type, data in events:
        h = H.evolve(h, event_type, data)
    return h


# -- examples ----------------------------------------------------------------------


def test_a_week_closes_into_an_invoice_of_hours_times_rate():
    h = fold([])
    h = apply(h, H.record_time(h, START, 90, "setup", START))
    h = apply(h, H.record_time(h, START + timedelta(days=2), 45, "tests", START + timedelta(2)))
    assert H.close_weeks(h, CONTRACT, at(START + timedelta(days=6), 23), REVIEW) == []
    closing = at(START + timedelta(days=7), 0)
    (closed,) = H.close_weeks(h, CONTRACT, closing, REVIEW)
    assert closed[0] == "WeekClosed"
    assert closed[1]["minutes"] == 135 and closed[1]["amount"] == 13_500
    assert closed[1]["invoice_id"] == H.invoice_id(CONTRACT, 0)
    assert closed[1]["review_due_at"] == closing + timedelta(seconds=REVIEW)


def test_time_beyond_the_weekly_limit_is_refused_with_what_is_left():
    h = fold([], limit=2)
    h = apply(h, H.record_time(h, START, 100, "a", START))
    with pytest.raises(Conflict) as refused:
        H.record_time(h, START + timedelta(days=1), 30, "b", START + timedelta(days=1))
    assert refused.value.details["reason"] == "weekly_limit"
    assert refused.value.details["remaining_minutes"] == 20
    # Editing the day itself counts its old minutes out.
    assert H.record_time(h, START, 120, "a", START)


def test_a_closed_week_cannot_be_edited_and_the_future_cannot_be_recorded():
    h = fold([])
    h = apply(h, H.close_weeks(h, CONTRACT, at(START + timedelta(days=7)), REVIEW))
    with pytest.raises(Conflict, match="closed"):
        H.record_time(h, START, 60, "late", START + timedelta(days=7))
    with pytest.raises(Conflict):
        H.record_time(h, START + timedelta(days=9), 60, "tomorrow", START + timedelta(days=8))


def test_limit_changes_and_pauses_apply_from_next_week():
    h = fold([], limit=10)
    today = START + timedelta(days=3)
    h = apply(h, H.change_limit(h, 1, today))
    h = apply(h, H.pause(h, True, today))
    assert H.limit_for(h, 0) == 10 and H.limit_for(h, 1) == 1
    assert not H.paused_in(h, 0) and H.paused_in(h, 1)
    assert H.record_time(h, today, 600, "still this week", today)
    with pytest.raises(Conflict, match="paused"):
        H.record_time(h, START + timedelta(days=7), 10, "x", START + timedelta(days=7))


def test_ending_bills_the_last_partial_week_at_once():
    h = fold([])
    day = START + timedelta(days=9)
    h = apply(h, H.record_time(h, day, 60, "x", day))
    events = H.end(h, CONTRACT, "buyer", "done", at(day), REVIEW)
    assert [t for t, _ in events] == ["HourlyContractEnded", "WeekClosed", "WeekClosed"]
    assert [d["amount"] for _, d in events[1:]] == [0, 6_000]
    h = apply(h, events)
    assert not H.finished(h)
    h = apply(h, H.approve_invoice(h, 1, "USD", "s"))
    h = apply(h, H.mark_paid(h, H.invoice_id(CONTRACT, 1), 6_000, 600))
    assert H.finished(h)
    assert H.mark_paid(h, H.invoice_id(CONTRACT, 1), 6_000, 600) == []


def test_a_disputed_invoice_waits_for_an_administrator():
    h = fold([])
    h = apply(h, H.record_time(h, START, 60, "x", START))
    closing = at(START + timedelta(days=7), 0)
    h = apply(h, H.close_weeks(h, CONTRACT, closing, REVIEW))
    h = apply(h, H.dispute_invoice(h, 0, "buyer", "too much"))
    assert H.auto_approvals(h, closing + timedelta(days=30), "USD", "s") == []
    with pytest.raises(ServiceError):
        H.resolve_dispute(h, 0, "admin", 6_001, "")
    h = apply(h, H.resolve_dispute(h, 0, "admin", 2_000, "part"))
    assert h.invoices[0].status == "resolved"
    h = apply(h, H.mark_paid(h, H.invoice_id(CONTRACT, 0), 2_000, 200))
    assert h.invoices[0].status == "settled" and h.invoices[0].paid_amount == 2_000


def test_the_json_form_folds_back_to_the_same_state():
    h = fold([])
    h = apply(h, H.record_time(h, START, 60, "x", START))
    h = apply(h, H.change_limit(h, 5, START))
    h = apply(h, H.close_weeks(h, CONTRACT, at(START + timedelta(days=7)), REVIEW))
    assert H.from_json(H.to_json(h)) == h


# -- properties ------------------------------------------------------------------------

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


def test_an_hourly_offer_starts_within_a_year_with_a_limit_of_a_week_at_most():
    ok = {"rate": 1, "weekly_limit": 168, "start_date": START}
    H.check_terms(ok, START)
    for bad in (
        {**ok, "rate": 0},
        {**ok, "weekly_limit": 169},
        {**ok, "start_date": START - timedelta(days=1)},
        {**ok, "start_date": START + timedelta(days=367)},
    ):
        with pytest.raises(ServiceError):
            H.check_terms(bad, START)


def test_a_declined_charge_waits_for_another_card_and_is_charged_again():
    h = fold([])
    h = apply(h, H.record_time(h, START, 60, "x", START))
    h = apply(h, H.close_weeks(h, CONTRACT, at(START + timedelta(days=7)), REVIEW))
    h = apply(h, H.approve_invoice(h, 0, "USD", "s"))
    invoice = H.invoice_id(CONTRACT, 0)
    h = apply(h, H.charge_failed(h, invoice, 1, "card_declined"))
    assert h.invoices[0].status == "charge_failed"
    assert H.charge_failed(h, invoice, 1, "card_declined") == []  # redelivered
    with pytest.raises(Conflict):
        H.approve_invoice(h, 0, "USD", "s")
    (retried,) = H.retry_charge(h, 0, "pm_card_visa")
    assert {k: retried[1][k] for k in ("payment_method", "attempt", "amount")} == {
        "payment_method": "pm_card_visa",
        "attempt": 2,
        "amount": 6_000,
    }
    h = apply(h, [retried])
    assert (h.invoices[0].status, h.invoices[0].attempt) == ("approved", 2)
    assert H.charge_failed(h, invoice, 1, "late answer of the first") == []
    h = apply(h, H.mark_paid(h, invoice, 6_000, 600))
    assert h.invoices[0].status == "paid"
