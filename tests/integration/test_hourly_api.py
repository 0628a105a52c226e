"""An hourly contract's three weeks through the HTTP API, money included: an
offer revised and accepted, time recorded within the weekly limit, a week
approved when its review runs out, one disputed and resolved by an
administrator, the limit changed, and the contract ended with its last
partial week billed. The contracts service's clock is a fixed one the test
moves (its timer closes weeks and approves invoices by it); everything else
is real: every service, the relay, RabbitMQ and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.clock import Clock, FixedClock
from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import REVIEW_SECONDS, Deal
from tests.integration.test_identity_api import assert_problem

pytestmark = pytest.mark.integration

RATE = 5_000  # 50.00 USD an hour


def contracts_clock(deal: Deal) -> FixedClock:
    """The contracts service's clock, from now on told by the test."""
    (provider,) = [d for d in deal.containers["contracts"].dependencies if isinstance(d, Clock)]
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    provider.clock = clock
    return clock


def hourly_terms(start: str, weekly_limit: int, card: str = "pm_card_visa") -> dict[str, Any]:
    return {
        "currency": "USD",
        "scope": "Support for the shop, by the hour.",
        "hourly": {
            "rate": RATE,
            "weekly_limit": weekly_limit,
            "start_date": start,
            "payment_method": card,
        },
    }


def week_of(contract: dict[str, Any], week: int) -> dict[str, Any]:
    return contract["hourly"]["weeks"][week]


def invoice_status(deal: Deal, token: str, cid: str, week: int, status: str) -> dict[str, Any]:
    return deal.visible(
        f"/contracts/{cid}",
        token,
        check=lambda c: (
            len(c["hourly"]["weeks"]) > week
            and (week_of(c, week)["invoice"] or {}).get("status") == status
        ),
        timeout=30,
    )


def test_three_hourly_weeks_one_disputed(deal: Deal):
    clock = contracts_clock(deal)
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    admin = deal.admin()
    b, s, a = buyer["access_token"], seller["access_token"], admin["access_token"]
    start = clock.today()

    # The offer: sent, changes asked, revised, and the version read accepted.
    # An hourly project, an hourly proposal, hired on those terms.
    budget = {"type": "hourly", "currency": "USD", "min_rate": 3_000, "max_rate": 6_000}
    project = deal.project(b, budget=budget)
    price = {"type": "hourly", "amount": RATE, "currency": "USD"}
    proposal = deal.post(
        f"/projects/{project['project_id']}/proposals", deal.proposal_body(price=price), s
    ).json()
    sent = deal.post(
        f"/proposals/{proposal['proposal_id']}/offer",
        {"terms": hourly_terms(start.isoformat(), 10)},
        b,
    )
    assert sent.status_code == 201, sent.text
    assert sent.headers["Location"].endswith(f"/contracts/{sent.json()['contract_id']}")
    cid = sent.json()["contract_id"]
    assert sent.json()["milestones"] == [] and sent.json()["terms"]["hourly"]["rate"] == RATE
    mixed = hourly_terms(start.isoformat(), 10)
    mixed["milestones"] = [{"title": "x", "amount": 1, "due_date": "2099-01-01"}]
    assert_problem(deal.post(f"/contracts/{cid}/revise", {"terms": mixed}, b), 422, "invalid_input")
    assert deal.post(f"/contracts/{cid}/request-changes", {"message": "12 h a week?"}, s).ok
    revised = deal.post(
        f"/contracts/{cid}/revise",
        {"terms": hourly_terms(start.isoformat(), 12, "pm_card_chargeDeclined")},
        b,
    )
    assert revised.status_code == 200, revised.text
    stale = deal.post(f"/contracts/{cid}/accept", {"version": 1}, s)
    assert assert_problem(stale, 409, "conflict")["reason"] == "stale_offer"
    accepted = deal.post(f"/contracts/{cid}/accept", {"version": 2}, s)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"
    assert accepted.json()["hourly"]["weekly_limit"] == 12

    # Week 0: time within the limit (12 h = 720 min), edited, and 409 with what is left.
    day0 = start.isoformat()
    assert_problem(
        deal.post(f"/contracts/{cid}/time", {"day": day0, "minutes": 60}, b), 403, "forbidden"
    )
    assert deal.post(f"/contracts/{cid}/time", {"day": day0, "minutes": 120, "memo": "a"}, s).ok
    edited = deal.post(f"/contracts/{cid}/time", {"day": day0, "minutes": 180, "memo": "b"}, s)
    assert edited.status_code == 200, edited.text
    assert week_of(edited.json(), 0)["entries"] == [{"day": day0, "minutes": 180, "memo": "b"}]
    clock.advance(timedelta(days=1))
    day1 = clock.today().isoformat()
    over = deal.post(f"/contracts/{cid}/time", {"day": day1, "minutes": 600}, s)
    problem = assert_problem(over, 409, "conflict")
    # (details cross RPC as text: nameko's safe_for_serialization)
    assert (problem["reason"], int(problem["remaining_minutes"])) == ("weekly_limit", 540)
    assert deal.post(f"/contracts/{cid}/time", {"day": day1, "minutes": 240}, s).ok
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    assert_problem(
        deal.post(f"/contracts/{cid}/time", {"day": tomorrow, "minutes": 1}, s), 409, "conflict"
    )

    # The week closes: 420 min at 50.00 = 350.00; its review runs out; the card
    # is declined, the buyer names another, and the week is charged and paid.
    clock.advance(timedelta(days=7))
    shown = invoice_status(deal, b, cid, 0, "in_review")
    assert week_of(shown, 0)["invoice"]["amount"] == 35_000
    late = deal.post(f"/contracts/{cid}/time", {"day": day0, "minutes": 10}, s)
    assert assert_problem(late, 409, "conflict")["reason"] == "week_closed"
    clock.advance(timedelta(seconds=REVIEW_SECONDS + 1))
    invoice_status(deal, b, cid, 0, "charge_failed")
    assert_problem(
        deal.post(f"/contracts/{cid}/weeks/0/pay", {"payment_method": "pm_card_visa"}, b),
        428,
        "idempotency_key_required",
    )
    card = {"payment_method": "pm_card_visa"}
    retried = deal.post(f"/contracts/{cid}/weeks/0/pay", card, b, headers=deal.key())
    assert retried.status_code == 200, retried.text
    assert week_of(retried.json(), 0)["invoice"]["attempt"] == 2
    paid = invoice_status(deal, s, cid, 0, "paid")
    assert (week_of(paid, 0)["invoice"]["paid_amount"], week_of(paid, 0)["invoice"]["fee"]) == (
        35_000,
        3_500,
    )

    # Week 1: 5 h; the buyer lowers the limit to 5 h from week 2, and disputes week 1.
    day8 = clock.today().isoformat()
    assert deal.post(f"/contracts/{cid}/time", {"day": day8, "minutes": 300, "memo": "c"}, s).ok
    limited = deal.post(f"/contracts/{cid}/weekly-limit", {"weekly_limit": 5}, b)
    assert limited.status_code == 200, limited.text
    assert limited.json()["hourly"]["weekly_limit"] == 12  # from next week
    clock.advance(timedelta(days=6))
    invoice_status(deal, b, cid, 1, "in_review")
    assert_problem(
        deal.post(f"/contracts/{cid}/weeks/1/dispute", {"reason": "x"}, s), 403, "forbidden"
    )
    disputed = deal.post(f"/contracts/{cid}/weeks/1/dispute", {"reason": "Not 5 hours"}, b)
    assert disputed.status_code == 200, disputed.text
    clock.advance(timedelta(days=2))  # the review period passes: frozen, not approved
    assert_problem(
        deal.post(f"/contracts/{cid}/weeks/1/resolve", {"to_seller": 1}, b, headers=deal.key()),
        403,
        "forbidden",
    )
    too_much = deal.post(
        f"/contracts/{cid}/weeks/1/resolve", {"to_seller": 25_001}, a, headers=deal.key()
    )
    assert_problem(too_much, 422, "invalid_input")
    assert_problem(
        deal.post(f"/contracts/{cid}/weeks/x/resolve", {"to_seller": 1}, a, headers=deal.key()),
        404,
        "not_found",
    )
    assert invoice_status(deal, b, cid, 1, "disputed")
    resolved = deal.post(
        f"/contracts/{cid}/weeks/1/resolve", {"to_seller": 10_000}, a, headers=deal.key()
    )
    assert resolved.status_code == 200, resolved.text
    settled = invoice_status(deal, s, cid, 1, "settled")
    assert week_of(settled, 1)["invoice"]["paid_amount"] == 10_000

    # Week 2 (day 16 now): the new limit; the seller ends the contract mid-week.
    day16 = clock.today().isoformat()
    over = deal.post(f"/contracts/{cid}/time", {"day": day16, "minutes": 360}, s)
    assert int(assert_problem(over, 409, "conflict")["remaining_minutes"]) == 300
    assert deal.post(f"/contracts/{cid}/time", {"day": day16, "minutes": 300}, s).ok
    paused = deal.post(f"/contracts/{cid}/pause", {"paused": True}, b)
    assert paused.status_code == 200 and paused.json()["hourly"]["paused"] is False  # next week
    assert_problem(deal.post(f"/contracts/{cid}/pause", {"paused": True}, b), 409, "conflict")
    assert_problem(deal.post(f"/contracts/{cid}/pause", {"paused": True}, s), 403, "forbidden")
    ended = deal.post(f"/contracts/{cid}/end", {"reason": "Done"}, s, headers=deal.key())
    assert ended.status_code == 200, ended.text
    assert ended.json()["hourly"]["ended"] is True
    assert week_of(ended.json(), 2)["invoice"]["amount"] == 25_000
    again = deal.post(f"/contracts/{cid}/end", {"reason": "Done"}, b, headers=deal.key())
    assert_problem(again, 409, "conflict")
    clock.advance(timedelta(seconds=REVIEW_SECONDS + 1))
    done = deal.visible(
        f"/contracts/{cid}", b, check=lambda c: c["status"] == "completed", timeout=30
    )
    assert (done["hourly"]["billed"], done["hourly"]["paid"]) == (85_000, 70_000)
    assert [w["minutes"] for w in done["hourly"]["weeks"]] == [420, 300, 300]

    items = deal.get(f"/contracts/{cid}/history", s).json()["items"]
    history = [x["type"] for x in items]
    assert history.count("WeekClosed") == 3 and "InvoiceDisputed" in history
    assert not any("payment_method" in x["data"] for x in items)  # the buyer's card
    assert "payment_method" not in done["terms"]["hourly"]

    # Escrow: a declined charge, then three charges, each released less 10%.
    escrow = deal.store.read_stream(f"escrow-{cid}")
    assert [e.type for e in escrow].count("FundingFailed") == 1
    charged = [e.data["amount"] for e in escrow if e.type == "EscrowFunded"]
    assert sorted(charged) == [10_000, 25_000, 35_000]
    fees = [e.data["fee"] for e in escrow if e.type == "EscrowReleased"]
    assert sum(fees) == 7_000
    lines = deal.visible(
        "/me/statement", s, check=lambda body: len(body["items"]) == 6, timeout=30
    )["items"]
    assert [(x["description"], x["amount"]) for x in lines][:2] == [
        ("Hourly week paid", 35_000),
        ("Platform fee", -3_500),
    ]
    assert lines[-1]["running_total"] == 63_000

    # Reputation: the ended contract can be reviewed, as a fixed-price one.
    categories = ("quality", "communication", "expertise", "deadlines", "value")
    review = {"rating": 5, "categories": dict.fromkeys(categories, 5), "text": "Good hours."}
    wait_until(
        lambda: deal.post(f"/contracts/{cid}/reviews", review, b).status_code == 201,
        timeout=30,
        what="the buyer may review the ended hourly contract",
    )

    # The seller erases themself: their memos read as erased, the money stays.
    erased = requests.delete(deal.url("/me"), headers={"Authorization": f"Bearer {s}"}, timeout=30)
    assert erased.status_code == 200, erased.text
    forgot = deal.visible(
        f"/contracts/{cid}",
        b,
        check=lambda c: week_of(c, 0)["entries"][0]["memo"] == "[erased]",
        timeout=60,
    )
    assert forgot["hourly"]["paid"] == 70_000

    # The gateway's escrow and contract views equal a rebuild from the log.
    assert "equal to a rebuild" in deal.verify("gateway.escrow")
    assert "equal to a rebuild" in deal.verify("gateway.contracts")
