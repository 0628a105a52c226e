"""Hourly billing rules, by example. The properties over random weeks, which
need escrow's ledger too, are in tests/properties/test_hourly_billing.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from services.contracts import hourly as H
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
