"""Bidding's rules, with no broker, database or clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.bidding import domain
from services.bidding.domain import ProjectFacts, Proposal, Slot
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound

NOW = datetime(2026, 11, 27, tzinfo=UTC)
OPEN = ProjectFacts("p1", "buyer", "open", 1)
LIVE = Proposal(
    "x1",
    "p1",
    "buyer",
    "seller",
    "submitted",
    content={"price": {"type": "fixed", "amount": 100, "currency": "USD"}},
)


def test_who_may_propose():
    assert domain.submit(OPEN, Slot(), Proposal(), "seller", NOW) == []
    with pytest.raises(Forbidden):
        domain.submit(OPEN, Slot(), Proposal(), "buyer", NOW)
    with pytest.raises(NotFound):
        domain.submit(ProjectFacts(), Slot(), Proposal(), "seller", NOW)
    with pytest.raises(Conflict, match="closed"):
        domain.submit(ProjectFacts("p1", "buyer", "closed", 1), Slot(), Proposal(), "seller", NOW)


def test_one_active_proposal_per_seller_and_project():
    taken = Slot("x1", NOW)
    with pytest.raises(Conflict):
        domain.submit(OPEN, taken, LIVE, "seller", NOW)
    withdrawn = Proposal("x1", "p1", "buyer", "seller", "withdrawn")
    assert domain.submit(OPEN, taken, withdrawn, "seller", NOW) == [
        ("BidSlotReleased", {"proposal_id": "x1"})
    ]


def test_a_claim_whose_proposal_never_arrived_is_taken_over_once_stale():
    fresh = Slot("ghost", NOW - timedelta(seconds=5))
    with pytest.raises(Conflict):
        domain.submit(OPEN, fresh, Proposal(), "seller", NOW)
    stale = Slot("ghost", NOW - timedelta(minutes=5))
    assert domain.submit(OPEN, stale, Proposal(), "seller", NOW) == [
        ("BidSlotReleased", {"proposal_id": "ghost"})
    ]


def test_milestones_must_add_up_to_a_fixed_price():
    price = {"type": "fixed", "amount": 1000, "currency": "USD"}
    ok = [
        {"title": "a", "amount": 400, "due_in_days": 5},
        {"title": "b", "amount": 600, "due_in_days": 9},
    ]
    assert domain.check_content({"price": price, "milestones": ok})
    with pytest.raises(InvalidInput):
        domain.check_content({"price": price, "milestones": ok[:1]})
    with pytest.raises(InvalidInput):
        domain.check_content({"price": {**price, "type": "hourly"}, "milestones": ok})


def test_only_the_buyer_sorts_and_declines_and_only_open_proposals():
    assert domain.shortlist(LIVE, "buyer", True) == [("ProposalShortlisted", {})]
    with pytest.raises(Forbidden):
        domain.shortlist(LIVE, "seller", True)
    declined = Proposal("x1", "p1", "buyer", "seller", "declined")
    with pytest.raises(Conflict):
        domain.decline(declined, "buyer", "")
    with pytest.raises(Conflict):
        domain.withdraw(declined, "seller", "")
    assert domain.hire(LIVE, "c1") == [("ProposalHired", {"contract_id": "c1"})]
    assert domain.hire(Proposal("x1", "p1", "buyer", "seller", "hired"), "c1") == []


def test_edits_record_the_project_version_they_answer():
    edited = domain.edit(
        LIVE, "seller", {"duration_days": 12}, ProjectFacts("p1", "buyer", "open", 3)
    )
    assert edited == [("ProposalEdited", {"project_version": 3, "duration_days": 12})]


def test_a_withdrawn_or_declined_proposal_refuses_a_hire_once():
    proposal = Proposal("p1", "pr1", "b1", "s1", "submitted")
    assert domain.hire(proposal, "c1") == [("ProposalHired", {"contract_id": "c1"})]
    withdrawn = Proposal("p1", "pr1", "b1", "s1", "withdrawn")
    refused = domain.hire(withdrawn, "c1")
    assert refused == [("ProposalHireRefused", {"contract_id": "c1", "status": "withdrawn"})]
    assert domain.hire(replace(withdrawn, refused=frozenset({"c1"})), "c1") == []


def test_an_open_proposal_reads_not_selected_once_and_can_still_be_hired():
    proposal = Proposal("p1", "pr1", "b1", "s1", "submitted")
    (told,) = domain.not_selected(proposal, "c9")
    assert told == ("ProposalNotSelected", {"contract_id": "c9"})
    passed_over = replace(proposal, status="not_selected")
    assert domain.not_selected(passed_over, "c9") == []
    for decided in ("withdrawn", "declined", "hired"):
        assert domain.not_selected(replace(proposal, status=decided), "c9") == []
    # An offer accepted on it later is refused (contracts then cancels it).
    refused = [("ProposalHireRefused", {"contract_id": "c2", "status": "not_selected"})]
    assert domain.hire(passed_over, "c2") == refused
