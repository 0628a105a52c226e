"""A contract's rules, with no broker, database or clock."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.contracts import domain as D
from services.contracts.domain import Contract
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent

TODAY = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 9, tzinfo=UTC)
PROPOSAL = {
    "proposal_id": "p1",
    "project_id": "j1",
    "buyer_id": "buyer",
    "seller_id": "seller",
    "status": "submitted",
}


def terms(*amounts: int, limit: int = 1) -> dict:
    return {
        "currency": "USD",
        "scope": "a shop",
        "milestones": [
            {
                "milestone_id": f"m{i}",
                "title": f"part {i}",
                "amount": a,
                "due_date": TODAY + timedelta(days=10 * (i + 1)),
                "revision_limit": limit,
            }
            for i, a in enumerate(amounts)
        ],
    }


def fold(state: Contract, events: list[tuple[str, dict]], at: datetime = T0) -> Contract:
    for event_type, data in events:
        recorded = RecordedEvent(
            uuid.uuid4(), event_type, 1, data, EventMetadata.root("x"), "contract-c1", 0, 1, at
        )
        state = D.evolve(state, DecodedEvent(recorded, data, 1))
    return state


def active(*amounts: int, limit: int = 1) -> Contract:
    state = fold(
        Contract(),
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(*amounts, limit=limit), 14, TODAY),
    )
    state = fold(state, D.accept_offer(state, "seller", 1))
    for m in state.milestones:
        state = fold(state, D.mark_funded(state, m))
    return state


def test_offer_versions_and_acceptance_of_the_version_seen():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), 14, TODAY)
    )
    asked = fold(offered, D.request_offer_changes(offered, "seller", "more time please"))
    revised = fold(asked, D.revise_offer(asked, "buyer", terms(150), TODAY))
    assert (revised.status, revised.offer_version, revised.milestones["m0"].amount) == (
        "offered",
        2,
        150,
    )
    with pytest.raises(Conflict, match="changed since"):
        D.accept_offer(revised, "seller", 1)
    with pytest.raises(Forbidden):
        D.accept_offer(revised, "buyer", 2)
    (started,) = D.accept_offer(revised, "seller", 2)
    assert started[0] == "ContractStarted" and started[1]["offer_version"] == 2


def test_only_the_projects_buyer_offers_and_only_on_an_open_proposal():
    with pytest.raises(Forbidden):
        D.send_offer(Contract(), "c1", PROPOSAL, "someone", terms(100), 14, TODAY)
    with pytest.raises(Conflict):
        D.send_offer(
            Contract(), "c1", {**PROPOSAL, "status": "withdrawn"}, "buyer", terms(100), 14, TODAY
        )
    with pytest.raises(InvalidInput):
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(0), 14, TODAY)
    with pytest.raises(InvalidInput):
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", {**terms(1), "milestones": []}, 14, TODAY)


def test_submit_request_changes_within_the_limit_then_approve():
    state = active(500, limit=1)
    state = fold(state, D.submit_work(state, "seller", "m0", "first cut", []))
    with pytest.raises(Forbidden):
        D.request_changes(state, "seller", "m0", "x")
    state = fold(state, D.request_changes(state, "buyer", "m0", "bigger logo"))
    with pytest.raises(Conflict):
        D.approve(state, "buyer", "m0")  # nothing submitted since the request
    state = fold(state, D.submit_work(state, "seller", "m0", "second cut", []))
    assert state.milestones["m0"].submissions == 2
    with pytest.raises(Conflict, match="revision limit"):
        D.request_changes(state, "buyer", "m0", "again")
    state = fold(state, D.approve(state, "buyer", "m0"))
    assert state.milestones["m0"].status == "approved"


def test_work_is_submitted_only_on_funded_milestones():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), 14, TODAY)
    )
    started = fold(offered, D.accept_offer(offered, "seller", 1))
    with pytest.raises(Conflict):
        D.submit_work(started, "seller", "m0", "early", [])
    funded = fold(started, D.mark_funded(started, "m0"))
    assert D.mark_funded(funded, "m0") == []  # a redelivered notice records nothing


def test_auto_approval_is_decided_by_the_log_alone():
    state = active(100, 200)
    submitted = fold(state, D.submit_work(state, "seller", "m1", "done", []), at=T0)
    assert D.auto_approvals(submitted, T0 + timedelta(days=13, hours=23)) == []
    (due,) = D.auto_approvals(submitted, T0 + timedelta(days=14))
    assert due == (
        "MilestoneApproved",
        {"milestone_id": "m1", "automatic": True, "deadline": T0 + timedelta(days=14)},
    )
    approved = fold(submitted, [due])
    assert D.auto_approvals(approved, T0 + timedelta(days=30)) == []


def test_the_contract_completes_when_every_milestone_is_paid_or_removed():
    state = active(100, 200)
    for m in ("m0", "m1"):
        state = fold(state, D.submit_work(state, "seller", m, "done", []))
        state = fold(state, D.approve(state, "buyer", m))
    first = D.mark_paid(state, "m0")
    assert [e for e, _ in first] == ["MilestonePaid"]
    state = fold(state, first)
    last = D.mark_paid(state, "m1")
    assert [e for e, _ in last] == ["MilestonePaid", "ContractCompleted"]
    assert last[1][1] == {
        "total_paid": 300,
        "currency": "USD",
        "on_time": True,
        "late_milestones": [],
    }
    assert D.mark_paid(fold(state, last), "m1") == []


def test_late_milestones_are_visible():
    state = active(100, 200)
    assert D.late_milestones(state, TODAY) == []
    assert D.late_milestones(state, TODAY + timedelta(days=15)) == ["m0"]
    assert D.late_milestones(state, TODAY + timedelta(days=25)) == ["m0", "m1"]
