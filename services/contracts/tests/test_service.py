"""ContractsService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.contracts import domain
from services.contracts.service import CONTRACT, ContractsService
from shared.errors import Conflict, Forbidden, StaleState
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(ContractsService, tmp_path, {"CONTRACT_REVIEW_DAYS": 14})


def proposal_on_open_project(h: ServiceHarness) -> tuple[str, str]:
    """(project id, proposal id): what projects and bidding have recorded (the one
    place this test sets up other services' entities)."""
    project_id, proposal_id = str(uuid.uuid4()), str(uuid.uuid4())
    posted = {
        "project_id": project_id,
        "buyer_id": BUYER,
        "title": "A landing page",
        "description": "One page, responsive, with a contact form.",
        "budget": {"type": "fixed", "amount": 250_000, "currency": "USD"},
        "deadline": h.clock.today() + timedelta(days=30),
    }
    h.append(f"project-{project_id}", [("ProjectPosted", posted)], actor=BUYER)
    submitted = {
        "proposal_id": proposal_id,
        "project_id": project_id,
        "buyer_id": BUYER,
        "seller_id": SELLER,
        "project_version": 1,
        "cover_letter": "I have built many landing pages like this one.",
        "price": {"type": "fixed", "amount": 200_000, "currency": "USD"},
        "duration_days": 10,
    }
    h.append(f"proposal-{proposal_id}", [("ProposalSubmitted", submitted)], actor=SELLER)
    return project_id, proposal_id


def offer(h: ServiceHarness, proposal_id: str, key: str | None = None) -> dict[str, Any]:
    terms = {
        "currency": "USD",
        "scope": "a landing page",
        "milestones": [
            {
                "title": "the page",
                "amount": 200_000,
                "due_date": (h.clock.today() + timedelta(days=20)).isoformat(),
            }
        ],
    }
    return h.worker(BUYER, key=key).send_offer(proposal_id, {"terms": terms})


def test_one_offer_per_proposal_and_a_retry_is_that_offer(h: ServiceHarness) -> None:
    _, proposal_id = proposal_on_open_project(h)
    first = offer(h, proposal_id, key="k1")
    assert offer(h, proposal_id, key="k1") == first
    with pytest.raises(Conflict) as caught:
        offer(h, proposal_id, key="k2")
    assert caught.value.details["reason"] == "offer_exists"
    assert h.types(f"contract-{first['contract_id']}") == ["OfferSent"]


def test_accepting_needs_the_project_open(h: ServiceHarness) -> None:
    project_id, proposal_id = proposal_on_open_project(h)
    contract_id = offer(h, proposal_id)["contract_id"]
    h.append(f"project-{project_id}", [("ProjectClosed", {"reason": "found someone"})])
    with pytest.raises(Conflict) as caught:
        h.worker(SELLER).accept_offer(contract_id, 1)
    assert caught.value.details["reason"] == "project_not_open"


def test_an_accept_that_lost_a_race_is_decided_again_on_the_fresh_state(
    h: ServiceHarness,
) -> None:
    _, proposal_id = proposal_on_open_project(h)
    contract_id = offer(h, proposal_id)["contract_id"]
    stream = f"contract-{contract_id}"
    h.race(stream, [("OfferDeclined", {"version": 1, "reason": "declined meanwhile"})])
    with pytest.raises(Conflict) as caught:
        h.worker(SELLER).accept_offer(contract_id, 1)
    assert not isinstance(caught.value, StaleState)  # the offer is declined now
    assert h.types(stream) == ["OfferSent", "OfferDeclined"]


def funded_contract(h: ServiceHarness) -> tuple[str, str, str, dict[str, Any]]:
    """(proposal id, contract id, its stream, its one milestone): accepted, and
    funded as escrow announces it."""
    _, proposal_id = proposal_on_open_project(h)
    contract = offer(h, proposal_id)
    contract_id, stream = contract["contract_id"], f"contract-{contract['contract_id']}"
    (milestone,) = contract["milestones"]
    h.worker(SELLER).accept_offer(contract_id, 1)
    funded = {
        "contract_id": contract_id,
        "milestone_id": milestone["milestone_id"],
        "amount": 200_000,
        "currency": "USD",
        "charge_id": str(uuid.uuid4()),
        "buyer_id": BUYER,
    }
    h.append(f"escrow-{contract_id}", [("EscrowFunded", funded)])
    h.worker().on_escrow_funded(h.message(f"escrow-{contract_id}", "EscrowFunded"))
    return proposal_id, contract_id, stream, milestone


def test_the_clock_sets_the_review_deadline_and_its_running_out_approves(
    h: ServiceHarness,
) -> None:
    _, contract_id, stream, milestone = funded_contract(h)
    h.worker(SELLER).submit_work(contract_id, milestone["milestone_id"], {"note": "done"})
    (submitted,) = [e for e in h.recorded(stream) if e.type == "WorkSubmitted"]
    due = datetime.fromisoformat(submitted.data["review_due_at"])
    assert due == h.clock.now() + timedelta(days=14)
    h.catch_up()
    assert h.worker().approve_overdue_reviews() == 0
    h.clock.advance(timedelta(days=14, seconds=1))
    assert h.worker().approve_overdue_reviews() == 1
    assert h.types(stream)[-1] == "MilestoneApproved"


def hourly_contract(h: ServiceHarness, limit: int = 10) -> str:
    _, proposal_id = proposal_on_open_project(h)
    terms = {
        "currency": "USD",
        "scope": "support, by the hour",
        "hourly": {
            "rate": 6_000,
            "weekly_limit": limit,
            "start_date": h.clock.today().isoformat(),
            "payment_method": "pm_card_visa",
        },
    }
    sent = h.worker(BUYER).send_offer(proposal_id, {"terms": terms, "review_days": 3})
    assert sent["milestones"] == [] and sent["terms"]["hourly"]["rate"] == 6_000
    h.worker(SELLER).accept_offer(sent["contract_id"], 1)
    return str(sent["contract_id"])


def test_an_hourly_week_closes_on_the_clock_and_its_review_running_out_approves(
    h: ServiceHarness,
) -> None:
    contract_id = hourly_contract(h, limit=2)
    stream = f"contract-{contract_id}"
    today = h.clock.today().isoformat()
    seller = h.worker(SELLER)
    doc = seller.record_time(contract_id, {"day": today, "minutes": 90, "memo": "setup"})
    assert doc["hourly"]["weeks"][0]["minutes"] == 90
    with pytest.raises(Conflict) as refused:
        h.worker(SELLER).record_time(
            contract_id,
            {"day": (h.clock.today() + timedelta(days=1)).isoformat(), "minutes": 60},
        )
    assert refused.value.details["reason"] == "outside_contract"
    h.clock.advance(timedelta(days=1))
    with pytest.raises(Conflict) as refused:
        h.worker(SELLER).record_time(
            contract_id, {"day": h.clock.today().isoformat(), "minutes": 60}
        )
    assert refused.value.details["remaining_minutes"] == 30
    h.catch_up()
    assert h.worker().bill_hourly_weeks() == 0
    h.clock.advance(timedelta(days=7))
    h.catch_up()
    assert h.worker().bill_hourly_weeks() == 1
    assert h.types(stream)[-1] == "WeekClosed"
    (closed,) = [e for e in h.recorded(stream) if e.type == "WeekClosed"]
    assert closed.data["amount"] == 9_000
    # Its id is derived from the contract and the week: another timer records nothing.
    key = f"hourly-close:{contract_id}:0"
    assert str(closed.event_id) == str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|{stream}|0|0"))
    h.worker()._decided_as(key).run(
        CONTRACT, contract_id, lambda s: domain.close_hourly_weeks(s, h.clock.now())
    )
    assert h.types(stream).count("WeekClosed") == 1
    h.catch_up()
    assert h.worker().bill_hourly_weeks() == 0  # nothing due until the review ends
    h.clock.advance(timedelta(days=3, seconds=1))
    h.catch_up()
    assert h.worker().bill_hourly_weeks() == 1
    assert h.types(stream)[-1] == "InvoiceApproved"
    released = {
        "contract_id": contract_id,
        "milestone_id": closed.data["invoice_id"],
        "amount": 9_000,
        "currency": "USD",
        "seller_id": SELLER,
        "fee": 900,
        "cause": "x",
    }
    h.append(f"escrow-{contract_id}", [("EscrowReleased", released)])
    h.worker().on_escrow_released(h.message(f"escrow-{contract_id}", "EscrowReleased"))
    assert h.types(stream)[-1] == "InvoicePaid"
    ended = h.worker(BUYER).end_hourly(contract_id, "done")
    assert ended["status"] == "completed"  # the last week had no time: nothing to bill
    assert ended["hourly"]["paid"] == 9_000


def test_an_hourly_contract_ended_before_any_time_was_billed_ends_as_cancelled(
    h: ServiceHarness,
) -> None:
    contract_id = hourly_contract(h)
    ended = h.worker(SELLER).end_hourly(contract_id, "changed my plans")
    assert ended["status"] == "cancelled"
    assert h.types(f"contract-{contract_id}")[-3:] == [
        "HourlyContractEnded",
        "WeekClosed",
        "ContractCancelled",
    ]
    with pytest.raises(Conflict):
        h.worker(SELLER).record_time(
            contract_id, {"day": h.clock.today().isoformat(), "minutes": 60}
        )


def test_a_declined_week_waits_for_the_buyer_to_name_another_card(h: ServiceHarness) -> None:
    contract_id = hourly_contract(h)
    stream = f"contract-{contract_id}"
    h.worker(SELLER).record_time(contract_id, {"day": h.clock.today().isoformat(), "minutes": 60})
    h.clock.advance(timedelta(days=7))
    h.worker(BUYER).end_hourly(contract_id, "done")
    approved = h.worker(BUYER).approve_invoice(contract_id, 0)
    invoice = approved["hourly"]["weeks"][0]["invoice"]["invoice_id"]
    failed = {
        "charge_id": str(uuid.uuid4()),
        "reason": "card_declined",
        "message": "The card was declined.",
        "invoice_id": invoice,
        "attempt": 1,
    }
    h.append(f"escrow-{contract_id}", [("FundingFailed", failed)])
    h.worker().on_funding_failed(h.message(f"escrow-{contract_id}", "FundingFailed"))
    assert h.types(stream)[-1] == "InvoiceChargeFailed"
    with pytest.raises(Forbidden):
        h.worker(SELLER).retry_invoice_charge(contract_id, 0, "pm_card_visa")
    doc = h.worker(BUYER).retry_invoice_charge(contract_id, 0, "pm_card_visa")
    assert doc["hourly"]["weeks"][0]["invoice"]["status"] == "approved"
    assert doc["hourly"]["weeks"][0]["invoice"]["attempt"] == 2
    assert doc["status"] == "active"  # until the week is paid


def test_an_hourly_contract_takes_no_milestone_that_could_be_funded_and_never_released(
    h: ServiceHarness,
) -> None:
    contract_id = hourly_contract(h)
    milestone = {
        "title": "Extra",
        "amount": 50_000,
        "due_date": (h.clock.today() + timedelta(days=10)).isoformat(),
    }
    with pytest.raises(Conflict) as refused:
        h.worker(SELLER).propose_change(contract_id, {"action": "add", "milestone": milestone})
    assert refused.value.details["reason"] == "hourly_contract"


def test_an_award_the_owner_refused_cancels_the_contract_once_and_returns_its_funding(
    h: ServiceHarness,
) -> None:
    """The compensation of the eventual-consistency rule (README, "How services
    learn of each other"): an offer accepted as its proposal was withdrawn
    starts a contract; bidding, the proposal's owner, refuses the hire; this
    cancels the contract, and what was funded meanwhile goes back to the buyer."""
    proposal_id, contract_id, stream, milestone = funded_contract(h)
    refused = {"contract_id": contract_id, "status": "withdrawn"}
    h.append(f"proposal-{proposal_id}", [("ProposalHireRefused", refused)])
    message = h.message(f"proposal-{proposal_id}", "ProposalHireRefused")
    h.worker().on_hire_refused(message)
    h.worker().on_hire_refused(message)  # redelivered
    assert h.types(stream)[-1] == "ContractCancelled"
    assert h.types(stream).count("ContractCancelled") == 1
    (cancelled,) = [e for e in h.recorded(stream) if e.type == "ContractCancelled"]
    assert cancelled.data["refund_milestone_ids"] == [milestone["milestone_id"]]
    assert cancelled.data["cancelled_by"] == "system:contracts"
