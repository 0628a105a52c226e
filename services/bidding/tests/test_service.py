"""BiddingService's entrypoints on the embedded event store."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.bidding.service import BiddingService
from shared.errors import Conflict, Forbidden, NotFound
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())
PROPOSAL = {
    "cover_letter": "I have built many landing pages like this one.",
    "price": {"type": "fixed", "amount": 200_000, "currency": "USD"},
    "duration_days": 10,
}


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(BiddingService, tmp_path)


def open_project(h: ServiceHarness) -> str:
    """A posted project, as the projects service's events tell it (the one place
    this test sets up another service's entity)."""
    project_id = str(uuid.uuid4())
    posted = {
        "project_id": project_id,
        "buyer_id": BUYER,
        "title": "A landing page",
        "description": "One page, responsive, with a contact form.",
        "budget": {"type": "fixed", "amount": 250_000, "currency": "USD"},
        "deadline": h.clock.today() + timedelta(days=30),
    }
    h.append(f"project-{project_id}", [("ProjectPosted", posted)], actor=BUYER)
    return project_id


def submit(h: ServiceHarness, project_id: str, key: str | None = None) -> dict[str, Any]:
    return h.worker(SELLER, key=key).submit_proposal(project_id, PROPOSAL)


def test_a_seller_has_one_live_proposal_per_project(h: ServiceHarness) -> None:
    project_id = open_project(h)
    proposal = submit(h, project_id)
    assert (proposal["status"], proposal["buyer_id"]) == ("submitted", BUYER)
    with pytest.raises(Conflict) as caught:
        submit(h, project_id)
    assert caught.value.details["reason"] == "duplicate_proposal"
    h.worker(SELLER).withdraw_proposal(proposal["proposal_id"])
    again = submit(h, project_id)  # the slot was released
    assert again["proposal_id"] != proposal["proposal_id"]
    slot = f"bidslot-{project_id}_{SELLER}"
    assert h.types(slot) == [
        "BidSlotClaimed",
        "BidSlotReleased",
        "BidSlotClaimed",
    ]


def test_a_retried_submission_is_the_same_proposal(h: ServiceHarness) -> None:
    project_id = open_project(h)
    first = submit(h, project_id, key="k1")
    assert submit(h, project_id, key="k1") == first
    assert h.types(f"proposal-{first['proposal_id']}") == ["ProposalSubmitted"]


def test_losing_the_race_for_the_slot_is_a_duplicate_not_a_retry(h: ServiceHarness) -> None:
    project_id = open_project(h)
    other = str(uuid.uuid4())
    h.race(f"bidslot-{project_id}_{SELLER}", [("BidSlotClaimed", {"proposal_id": other})])
    with pytest.raises(Conflict) as caught:
        submit(h, project_id)
    assert caught.value.details["reason"] == "duplicate_proposal"


def test_only_the_buyer_shortlists_and_again_changes_nothing(h: ServiceHarness) -> None:
    proposal_id = submit(h, open_project(h))["proposal_id"]
    with pytest.raises(Forbidden):
        h.worker(SELLER).shortlist_proposal(proposal_id)
    assert h.worker(BUYER).shortlist_proposal(proposal_id)["shortlisted"] is True
    h.worker(BUYER).shortlist_proposal(proposal_id)
    assert h.types(f"proposal-{proposal_id}") == ["ProposalSubmitted", "ProposalShortlisted"]
    with pytest.raises(NotFound):
        h.worker(BUYER).shortlist_proposal(str(uuid.uuid4()))
