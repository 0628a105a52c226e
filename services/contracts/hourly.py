"""Hourly contracts' billing rules, as pure functions: time, weeks, invoices.

An hourly contract pays ``rate`` minor units per hour worked, at most
``weekly_limit`` hours a week, from ``start_date``. Weeks are counted from the
start date: week ``n`` holds the days ``start + 7n`` to ``start + 7n + 6`` and
closes at midnight UTC after its last day (or at once when the contract ends
in it: the last partial week is billed). The seller records minutes per day
with a memo, editable until the day's week closes, never beyond the week's
limit.

A closed week becomes an invoice of ``(minutes * rate + 30) // 60`` (the
minutes' price rounded half up to the minor unit, per week). The buyer has
the contract's review period to dispute it; after it the invoice is approved
and escrow charges and releases it. A disputed invoice is frozen until an
administrator says what the seller gets (at most the invoice).

Every decision is taken on the folded log and the time it is asked at, so a
replay closes the same weeks for the same amounts, and invoice ids are derived
from the contract and the week.

Changes of the weekly limit and pauses apply from the week after the one they
were asked in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.errors import Conflict, InvalidInput, NotFound

EventSpec = tuple[str, dict[str, Any]]

MAX_WEEKLY_HOURS = 168
MAX_START_DAYS = 366
"""An offer starts within a year (so every week's dates stay far from the calendar's end)."""
FINISHED_INVOICES = ("empty", "paid", "settled")
"""An invoice in one of these needs nothing more: nothing due, paid, or settled."""

HOURLY_EVENTS = (
    "TimeRecorded",
    "WeekClosed",
    "InvoiceApproved",
    "InvoiceDisputed",
    "InvoiceDisputeResolved",
    "InvoicePaid",
    "InvoiceSettled",
    "WeeklyLimitChanged",
    "HourlyPaused",
    "HourlyResumed",
    "HourlyContractEnded",
    "InvoiceChargeFailed",
    "InvoiceChargeRetried",
)


@dataclass(frozen=True)
class TimeEntry:
    day: date
    minutes: int
    memo: str


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    week: int
    week_start: date
    minutes: int
    rate: int
    amount: int
    status: str  # empty, in_review, approved, disputed, resolved, charge_failed, paid, settled
    review_due_at: datetime | None
    to_seller: int = 0
    paid_amount: int = 0
    fee: int = 0
    attempt: int = 1
    """Which charge of the invoice escrow makes (a declined card is tried again
    when the buyer names another)."""


@dataclass(frozen=True)
class Hourly:
    """An hourly contract's terms and what happened to its time and weeks."""

    rate: int
    weekly_limit: int
    start_date: date
    payment_method: str = ""
    limits: tuple[tuple[int, int], ...] = ()
    """(from week, hours): the buyer's changes of the weekly limit."""
    pauses: tuple[tuple[int, bool], ...] = ()
    """(from week, paused): pauses and resumptions."""
    entries: Mapping[date, TimeEntry] = field(default_factory=dict)
    invoices: Mapping[int, Invoice] = field(default_factory=dict)
    ended_week: int | None = None
    """The week the contract ended in: no time after it, and it is billed at once."""


def from_terms(terms: Mapping[str, Any]) -> Hourly:
    return Hourly(
        rate=int(terms["rate"]),
        weekly_limit=int(terms["weekly_limit"]),
        start_date=terms["start_date"],
        payment_method=str(terms.get("payment_method", "")),
    )


def check_terms(terms: Mapping[str, Any], today: date) -> None:
    """A rate above zero, a weekly limit of 1-168 hours, a start from today
    to a year ahead."""
    if (
        terms["rate"] <= 0
        or not 1 <= terms["weekly_limit"] <= MAX_WEEKLY_HOURS
        or not today <= terms["start_date"] <= today + timedelta(days=MAX_START_DAYS)
    ):
        raise InvalidInput(
            "an hourly offer needs a rate above zero, a weekly limit of 1 to 168 hours "
            "and a start date from today to a year ahead",
            {"fields": {"hourly": ["rate > 0, weekly_limit 1-168, start_date within a year."]}},
        )


# -- the calendar ----------------------------------------------------------------


def week_of(h: Hourly, day: date) -> int:
    return (day - h.start_date).days // 7


def week_start(h: Hourly, week: int) -> date:
    return h.start_date + timedelta(days=7 * week)


def closes_at(h: Hourly, week: int) -> datetime:
    """Midnight UTC after the week's last day."""
    return datetime.combine(week_start(h, week + 1), time(0), tzinfo=UTC)


def invoice_id(contract_id: str, week: int) -> str:
    """Derived, so a replay or a second timer names the same invoice."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"invoice:{contract_id}:{week}"))


def limit_for(h: Hourly, week: int) -> int:
    """The week's limit in hours: the latest change that applies to it."""
    hours = h.weekly_limit
    for from_week, changed in h.limits:
        if from_week <= week:
            hours = changed
    return hours


def paused_in(h: Hourly, week: int) -> bool:
    paused = False
    for from_week, state in h.pauses:
        if from_week <= week:
            paused = state
    return paused


def minutes_in(h: Hourly, week: int) -> int:
    return sum(e.minutes for e in h.entries.values() if week_of(h, e.day) == week)


def amount_for(minutes: int, rate: int) -> int:
    """The price of ``minutes`` at ``rate`` per hour, rounded half up."""
    return (minutes * rate + 30) // 60


def next_week_to_close(h: Hourly) -> int:
    return max(h.invoices, default=-1) + 1


# -- time ----------------------------------------------------------------------------


def record_time(h: Hourly, day: date, minutes: int, memo: str, today: date) -> list[EventSpec]:
    """Set the day's minutes (0 removes the entry). The day must be in a week
    still open, on or before today, not paused, and within the week's limit."""
    if isinstance(minutes, bool) or not 0 <= minutes <= 24 * 60:
        raise InvalidInput(
            "minutes are a whole number from 0 to 1440", {"fields": {"minutes": ["0-1440."]}}
        )
    if day < h.start_date or day > today:
        raise Conflict(
            "time is recorded for days from the contract's start to today",
            {"reason": "outside_contract", "start_date": h.start_date.isoformat()},
        )
    week = week_of(h, day)
    if h.ended_week is not None and week > h.ended_week:
        raise Conflict("the contract has ended", {"reason": "ended"})
    if week in h.invoices:
        raise Conflict("this week is closed", {"reason": "week_closed", "week": week})
    if paused_in(h, week):
        raise Conflict("the contract is paused this week", {"reason": "paused", "week": week})
    current = h.entries.get(day)
    others = minutes_in(h, week) - (current.minutes if current else 0)
    limit = limit_for(h, week) * 60
    if others + minutes > limit:
        raise Conflict(
            f"that is beyond the weekly limit of {limit // 60} hours: "
            f"{limit - others} minutes are left this week",
            {
                "reason": "weekly_limit",
                "week": week,
                "limit_minutes": limit,
                "remaining_minutes": limit - others,
            },
        )
    if current is not None and current.minutes == minutes and current.memo == memo:
        return []
    return [
        ("TimeRecorded", {"day": day, "week": week, "minutes": minutes, "memo": memo}),
    ]


# -- weeks and invoices ------------------------------------------------------------


def close_weeks(h: Hourly, contract_id: str, now: datetime, review_seconds: int) -> list[EventSpec]:
    """Every week that has closed by ``now`` (or up to the one the contract
    ended in) and has no invoice yet becomes one."""
    events: list[EventSpec] = []
    week = next_week_to_close(h)
    while (h.ended_week is None or week <= h.ended_week) and (
        closes_at(h, week) <= now or (h.ended_week is not None and week <= h.ended_week)
    ):
        minutes = minutes_in(h, week)
        amount = amount_for(minutes, h.rate)
        events.append(
            (
                "WeekClosed",
                {
                    "invoice_id": invoice_id(contract_id, week),
                    "week": week,
                    "week_start": week_start(h, week),
                    "minutes": minutes,
                    "rate": h.rate,
                    "amount": amount,
                    "review_due_at": (now + timedelta(seconds=review_seconds)) if amount else None,
                },
            )
        )
        week += 1
    return events


def _invoice(h: Hourly, week: int) -> Invoice:
    if week not in h.invoices:
        raise NotFound("no invoice for this week", {"week": week})
    return h.invoices[week]


def _in(invoice: Invoice, *statuses: str) -> None:
    if invoice.status not in statuses:
        raise Conflict(
            f"the invoice is {invoice.status}", {"reason": "wrong_state", "state": invoice.status}
        )


def _approved(
    h: Hourly, invoice: Invoice, currency: str, seller_id: str, automatic: bool
) -> EventSpec:
    return (
        "InvoiceApproved",
        {
            "invoice_id": invoice.invoice_id,
            "week": invoice.week,
            "amount": invoice.amount,
            "currency": currency,
            "seller_id": seller_id,
            "automatic": automatic,
            "payment_method": h.payment_method,
        },
    )


def approve_invoice(h: Hourly, week: int, currency: str, seller_id: str) -> list[EventSpec]:
    """The buyer approves before the review period ends."""
    invoice = _invoice(h, week)
    _in(invoice, "in_review")
    return [_approved(h, invoice, currency, seller_id, automatic=False)]


def auto_approvals(h: Hourly, now: datetime, currency: str, seller_id: str) -> list[EventSpec]:
    """Invoices whose review period ran out undisputed."""
    return [
        _approved(h, i, currency, seller_id, automatic=True)
        for i in sorted(h.invoices.values(), key=lambda i: i.week)
        if i.status == "in_review" and i.review_due_at is not None and i.review_due_at <= now
    ]


def dispute_invoice(h: Hourly, week: int, actor: str, reason: str) -> list[EventSpec]:
    """The buyer, while the invoice is in review."""
    invoice = _invoice(h, week)
    _in(invoice, "in_review")
    return [
        (
            "InvoiceDisputed",
            {"invoice_id": invoice.invoice_id, "week": week, "opened_by": actor, "reason": reason},
        )
    ]


def resolve_dispute(
    h: Hourly, week: int, admin_id: str, to_seller: int, note: str
) -> list[EventSpec]:
    """An administrator says what the seller gets of a disputed invoice; the
    rest is never charged."""
    invoice = _invoice(h, week)
    _in(invoice, "disputed")
    if isinstance(to_seller, bool) or not 0 <= to_seller <= invoice.amount:
        raise InvalidInput(
            "the seller's share must be between 0 and the invoice's amount",
            {"fields": {"to_seller": [f"Between 0 and {invoice.amount}."]}},
        )
    return [
        (
            "InvoiceDisputeResolved",
            {
                "invoice_id": invoice.invoice_id,
                "week": week,
                "amount": invoice.amount,
                "to_seller": to_seller,
                "resolved_by": admin_id,
                "note": note,
                "payment_method": h.payment_method,
            },
        )
    ]


def invoice_by_id(h: Hourly, invoice: str) -> Invoice | None:
    return next((i for i in h.invoices.values() if i.invoice_id == invoice), None)


def mark_paid(h: Hourly, invoice: str, amount: int, fee: int) -> list[EventSpec]:
    """Escrow charged and released the invoice (or the seller's share of it)."""
    found = invoice_by_id(h, invoice)
    if found is None or found.status not in ("approved", "resolved"):
        return []  # a redelivery
    kind = "InvoicePaid" if found.status == "approved" else "InvoiceSettled"
    return [(kind, {"invoice_id": invoice, "week": found.week, "amount": amount, "fee": fee})]


def charge_failed(h: Hourly, invoice: str, attempt: int, reason: str) -> list[EventSpec]:
    """Escrow's charge for the invoice was declined: the buyer names another card."""
    found = invoice_by_id(h, invoice)
    if found is None or found.status not in ("approved", "resolved") or found.attempt != attempt:
        return []  # a redelivery, or an older attempt's answer
    return [
        (
            "InvoiceChargeFailed",
            {"invoice_id": invoice, "week": found.week, "attempt": attempt, "reason": reason},
        )
    ]


def retry_charge(h: Hourly, week: int, payment_method: str) -> list[EventSpec]:
    """The buyer names a card for a week whose charge was declined."""
    invoice = _invoice(h, week)
    _in(invoice, "charge_failed")
    return [
        (
            "InvoiceChargeRetried",
            {
                "invoice_id": invoice.invoice_id,
                "week": week,
                "attempt": invoice.attempt + 1,
                "amount": invoice.to_seller or invoice.amount,
                "payment_method": payment_method,
            },
        )
    ]


# -- changes ------------------------------------------------------------------------------


def change_limit(h: Hourly, hours: int, today: date) -> list[EventSpec]:
    if isinstance(hours, bool) or not 1 <= hours <= MAX_WEEKLY_HOURS:
        raise InvalidInput(
            "a weekly limit is 1 to 168 hours", {"fields": {"weekly_limit": ["1-168."]}}
        )
    from_week = max(week_of(h, today) + 1, 0)
    return [("WeeklyLimitChanged", {"from_week": from_week, "weekly_limit": hours})]


def pause(h: Hourly, paused: bool, today: date) -> list[EventSpec]:
    from_week = max(week_of(h, today) + 1, 0)
    if paused_in(h, from_week) == paused:
        state = "paused" if paused else "running"
        raise Conflict(f"the contract is already {state} from next week", {"reason": state})
    return [("HourlyPaused" if paused else "HourlyResumed", {"from_week": from_week})]


def end(
    h: Hourly, contract_id: str, actor: str, reason: str, now: datetime, review_seconds: int
) -> list[EventSpec]:
    """Either party ends it: the week it ends in (and any not yet closed) is
    billed at once."""
    if h.ended_week is not None:
        raise Conflict("the contract has ended", {"reason": "ended"})
    last = max(week_of(h, now.date()), next_week_to_close(h) - 1, -1)
    ended = replace(h, ended_week=last)
    return [
        (
            "HourlyContractEnded",
            {"ended_by": actor, "reason": reason, "last_week": last},
        ),
        *close_weeks(ended, contract_id, now, review_seconds),
    ]


def finished(h: Hourly) -> bool:
    """Ended, and every invoice needs nothing more."""
    return h.ended_week is not None and all(
        i.status in FINISHED_INVOICES for i in h.invoices.values()
    )


def totals(h: Hourly) -> tuple[int, int]:
    """(billed, paid): what the invoices asked, and what the seller was paid gross."""
    return sum(i.amount for i in h.invoices.values()), sum(
        i.paid_amount for i in h.invoices.values()
    )


# -- the fold ------------------------------------------------------------------------


def _with_invoice(h: Hourly, week: int, **changes: Any) -> Hourly:
    return replace(h, invoices={**h.invoices, week: replace(h.invoices[week], **changes)})


def evolve(h: Hourly, event_type: str, data: Mapping[str, Any]) -> Hourly:
    week = int(data.get("week", -1))
    match event_type:
        case "TimeRecorded":
            day: date = data["day"]
            entries = {k: v for k, v in h.entries.items() if k != day}
            if data["minutes"]:
                entries[day] = TimeEntry(day, data["minutes"], data["memo"])
            return replace(h, entries=dict(sorted(entries.items())))
        case "WeekClosed":
            invoice = Invoice(
                data["invoice_id"],
                week,
                data["week_start"],
                data["minutes"],
                data["rate"],
                data["amount"],
                "in_review" if data["amount"] else "empty",
                data.get("review_due_at"),
            )
            return replace(h, invoices={**h.invoices, week: invoice})
        case "InvoiceApproved":
            return _with_invoice(h, week, status="approved")
        case "InvoiceDisputed":
            return _with_invoice(h, week, status="disputed")
        case "InvoiceDisputeResolved":
            to_seller = data["to_seller"]
            return _with_invoice(
                h, week, status="resolved" if to_seller else "settled", to_seller=to_seller
            )
        case "InvoicePaid":
            return _with_invoice(
                h, week, status="paid", paid_amount=data["amount"], fee=data["fee"]
            )
        case "InvoiceSettled":
            return _with_invoice(
                h, week, status="settled", paid_amount=data["amount"], fee=data["fee"]
            )
        case "WeeklyLimitChanged":
            return replace(h, limits=(*h.limits, (data["from_week"], data["weekly_limit"])))
        case "HourlyPaused" | "HourlyResumed":
            paused = event_type == "HourlyPaused"
            return replace(h, pauses=(*h.pauses, (data["from_week"], paused)))
        case "HourlyContractEnded":
            return replace(h, ended_week=data["last_week"])
        case "InvoiceChargeFailed":
            return _with_invoice(h, week, status="charge_failed")
        case "InvoiceChargeRetried":
            status = "resolved" if h.invoices[week].to_seller else "approved"
            return replace(
                _with_invoice(h, week, status=status, attempt=data["attempt"]),
                payment_method=data["payment_method"],
            )
    return h


# -- stored as JSON (the read model) -------------------------------------------------


def to_json(h: Hourly) -> dict[str, Any]:
    return {
        "rate": h.rate,
        "weekly_limit": h.weekly_limit,
        "start_date": h.start_date.isoformat(),
        "payment_method": h.payment_method,
        "limits": [list(x) for x in h.limits],
        "pauses": [list(x) for x in h.pauses],
        "entries": [
            {"day": e.day.isoformat(), "minutes": e.minutes, "memo": e.memo}
            for e in h.entries.values()
        ],
        "invoices": [
            {
                **{k: getattr(i, k) for k in Invoice.__dataclass_fields__},
                "week_start": i.week_start.isoformat(),
                "review_due_at": None if i.review_due_at is None else i.review_due_at.isoformat(),
            }
            for i in h.invoices.values()
        ],
        "ended_week": h.ended_week,
    }


def from_json(data: Mapping[str, Any]) -> Hourly:
    entries = {
        date.fromisoformat(e["day"]): TimeEntry(
            date.fromisoformat(e["day"]), e["minutes"], e["memo"]
        )
        for e in data["entries"]
    }
    invoices = {
        i["week"]: Invoice(
            **{
                **i,
                "week_start": date.fromisoformat(i["week_start"]),
                "review_due_at": None
                if i["review_due_at"] is None
                else datetime.fromisoformat(i["review_due_at"]),
            }
        )
        for i in data["invoices"]
    }
    return Hourly(
        rate=data["rate"],
        weekly_limit=data["weekly_limit"],
        start_date=date.fromisoformat(data["start_date"]),
        payment_method=data["payment_method"],
        limits=tuple((int(a), int(b)) for a, b in data["limits"]),
        pauses=tuple((int(a), bool(b)) for a, b in data["pauses"]),
        entries=entries,
        invoices=invoices,
        ended_week=data["ended_week"],
    )


def weeks(h: Hourly, today: date) -> list[dict[str, Any]]:
    """Hours per week, from the start to today's week (or the last), with each
    week's limit and invoice: what the contract view shows."""
    if today < h.start_date and not h.invoices:
        return []
    last = max(week_of(h, today), next_week_to_close(h) - 1)
    if h.ended_week is not None:
        last = h.ended_week
    shown = []
    for week in range(0, last + 1):
        invoice = h.invoices.get(week)
        shown.append(
            {
                "week": week,
                "week_start": week_start(h, week).isoformat(),
                "minutes": minutes_in(h, week),
                "limit_hours": limit_for(h, week),
                "paused": paused_in(h, week),
                "closed": invoice is not None,
                "entries": [
                    {"day": e.day.isoformat(), "minutes": e.minutes, "memo": e.memo}
                    for e in h.entries.values()
                    if week_of(h, e.day) == week
                ],
                "invoice": None
                if invoice is None
                else {
                    "invoice_id": invoice.invoice_id,
                    "minutes": invoice.minutes,
                    "rate": invoice.rate,
                    "amount": invoice.amount,
                    "status": invoice.status,
                    "review_due_at": None
                    if invoice.review_due_at is None
                    else invoice.review_due_at.isoformat(),
                    "to_seller": invoice.to_seller,
                    "paid_amount": invoice.paid_amount,
                    "fee": invoice.fee,
                    "attempt": invoice.attempt,
                },
            }
        )
    return shown
