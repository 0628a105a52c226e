"""ContractsService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.contracts.service import ContractsService
from shared.errors import Conflict, StaleState
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


def test_the_clock_sets_the_review_deadline_and_its_running_out_approves(
    h: ServiceHarness,
) -> None:
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
    h.worker(SELLER).submit_work(contract_id, milestone["milestone_id"], {"note": "done"})
    (submitted,) = [e for e in h.recorded(stream) if e.type == "WorkSubmitted"]
    due = datetime.fromisoformat(submitted.data["review_due_at"])
    assert due == h.clock.now() + timedelta(days=14)
    h.catch_up()
    assert h.worker().approve_overdue_reviews() == 0
    h.clock.advance(timedelta(days=14, seconds=1))
    assert h.worker().approve_overdue_reviews() == 1
    assert h.types(stream)[-1] == "MilestoneApproved"
