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
DAY14 = 14 * 86_400
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
        D.send_offer(
            Contract(), "c1", PROPOSAL, "buyer", terms(*amounts, limit=limit), DAY14, TODAY
        ),
    )
    state = fold(state, D.accept_offer(state, "seller", 1, T0))
    for m in state.milestones.values():
        state = fold(state, D.mark_funded(state, m.milestone_id, m.amount, "ch"))
    return state


def test_offer_versions_and_acceptance_of_the_version_seen():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY)
    )
    asked = fold(offered, D.request_offer_changes(offered, "seller", "more time please", T0))
    revised = fold(asked, D.revise_offer(asked, "buyer", terms(150), TODAY))
    assert (revised.status, revised.offer_version, revised.milestones["m0"].amount) == (
        "offered",
        2,
        150,
    )
    with pytest.raises(Conflict, match="changed since"):
        D.accept_offer(revised, "seller", 1, T0)
    with pytest.raises(Forbidden):
        D.accept_offer(revised, "buyer", 2, T0)
    (started,) = D.accept_offer(revised, "seller", 2, T0)
    assert started[0] == "ContractStarted" and started[1]["offer_version"] == 2


def test_the_buyer_withdraws_an_offer_not_yet_accepted():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY)
    )
    with pytest.raises(Forbidden):
        D.withdraw_offer(offered, "seller", "")
    asked = fold(offered, D.request_offer_changes(offered, "seller", "more time", T0))
    withdrawn = fold(asked, D.withdraw_offer(asked, "buyer", "hired elsewhere"))
    assert withdrawn.status == "withdrawn"
    for answer in (
        lambda: D.accept_offer(withdrawn, "seller", 1, T0),
        lambda: D.revise_offer(withdrawn, "buyer", terms(150), TODAY),
        lambda: D.withdraw_offer(withdrawn, "buyer", ""),
    ):
        with pytest.raises(Conflict, match="withdrawn"):
            answer()
    started = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    with pytest.raises(Conflict, match="active"):
        D.withdraw_offer(started, "buyer", "")


def test_an_offer_expires_unanswered_and_a_revision_sends_it_again():
    expiry = T0 + timedelta(days=3)
    offered = fold(
        Contract(),
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY, expiry),
    )
    assert offered.offer_expires_at == expiry
    assert D.expire_offer(offered, expiry - timedelta(seconds=1)) == []
    # One the seller asked to change waits for the buyer: it does not expire.
    asked = fold(offered, D.request_offer_changes(offered, "seller", "more", T0))
    assert D.expire_offer(asked, expiry + timedelta(days=30)) == []
    # Past its expiry, before the clock records it: no answer is taken.
    for answer in (
        lambda: D.accept_offer(offered, "seller", 1, expiry),
        lambda: D.request_offer_changes(offered, "seller", "more", expiry),
    ):
        with pytest.raises(Conflict) as refused:
            answer()
        assert refused.value.details["reason"] == "offer_expired"
    ((kind, data),) = D.expire_offer(offered, expiry)
    assert (kind, data) == ("OfferExpired", {"version": 1, "expires_at": expiry})
    expired = fold(offered, [(kind, data)])
    assert expired.status == "expired" and D.expire_offer(expired, expiry) == []
    with pytest.raises(Conflict) as refused:
        D.accept_offer(expired, "seller", 1, T0)
    assert refused.value.details["reason"] == "offer_expired"
    later = expiry + timedelta(days=10)
    renewed = fold(expired, D.revise_offer(expired, "buyer", terms(120), TODAY, later))
    assert (renewed.status, renewed.offer_version, renewed.offer_expires_at) == (
        "offered",
        2,
        later,
    )
    (started,) = D.accept_offer(renewed, "seller", 2, expiry)
    assert started[0] == "ContractStarted"
    # An offer without an expiry (older offers, or OFFER_EXPIRY_DAYS=0) never lapses.
    forever = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY)
    )
    assert D.expire_offer(forever, later) == []


def test_only_the_projects_buyer_offers_and_only_on_an_open_proposal():
    with pytest.raises(Forbidden):
        D.send_offer(Contract(), "c1", PROPOSAL, "someone", terms(100), DAY14, TODAY)
    with pytest.raises(Conflict):
        D.send_offer(
            Contract(), "c1", {**PROPOSAL, "status": "withdrawn"}, "buyer", terms(100), DAY14, TODAY
        )
    with pytest.raises(InvalidInput):
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(0), DAY14, TODAY)
    with pytest.raises(InvalidInput):
        D.send_offer(
            Contract(), "c1", PROPOSAL, "buyer", {**terms(1), "milestones": []}, DAY14, TODAY
        )


def submit(state: Contract, m: str, at: datetime = T0) -> Contract:
    return fold(state, D.submit_work(state, "seller", m, "done", [], at), at=at)


def test_submit_request_changes_within_the_limit_then_approve():
    state = active(500, limit=1)
    state = submit(state, "m0")
    with pytest.raises(Forbidden):
        D.request_changes(state, "seller", "m0", "x")
    state = fold(state, D.request_changes(state, "buyer", "m0", "bigger logo"))
    with pytest.raises(Conflict):
        D.approve(state, "buyer", "m0")  # nothing submitted since the request
    state = submit(state, "m0")
    assert state.milestones["m0"].submissions == 2
    with pytest.raises(Conflict, match="revision limit"):
        D.request_changes(state, "buyer", "m0", "again")
    (approved,) = D.approve(state, "buyer", "m0")
    assert approved == (
        "MilestoneApproved",
        {
            "milestone_id": "m0",
            "automatic": False,
            "amount": 500,
            "currency": "USD",
            "seller_id": "seller",
        },
    )
    state = fold(state, [approved])
    assert state.milestones["m0"].status == "approved"
    with pytest.raises(Conflict):
        D.approve(state, "buyer", "m0")  # approved once only


def test_work_is_submitted_only_on_funded_milestones():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY)
    )
    started = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    with pytest.raises(Conflict, match="not funded"):
        D.submit_work(started, "seller", "m0", "early", [], T0)
    funded = fold(started, D.mark_funded(started, "m0", 100, "ch"))
    assert D.mark_funded(funded, "m0", 100, "ch") == []  # a redelivered notice records nothing


def test_auto_approval_is_decided_by_the_log_alone():
    state = active(100, 200)
    submitted = submit(state, "m1")
    assert submitted.milestones["m1"].review_due_at == T0 + timedelta(days=14)
    assert D.auto_approvals(submitted, T0 + timedelta(days=13, hours=23)) == []
    (due,) = D.auto_approvals(submitted, T0 + timedelta(days=14))
    assert due[0] == "MilestoneApproved" and due[1]["automatic"] is True
    assert due[1]["milestone_id"] == "m1"
    approved = fold(submitted, [due])
    assert D.auto_approvals(approved, T0 + timedelta(days=30)) == []
    # Changes requested in time stop the clock; the next submission restarts it.
    asked = fold(submitted, D.request_changes(submitted, "buyer", "m1", "fix it"))
    assert D.auto_approvals(asked, T0 + timedelta(days=30)) == []


def test_the_contract_completes_when_every_milestone_is_paid_or_removed():
    state = active(100, 200)
    for m in ("m0", "m1"):
        state = submit(state, m)
        state = fold(state, D.approve(state, "buyer", m))
    first = D.mark_paid(state, "m0", 100, 10)
    assert [e for e, _ in first] == ["MilestonePaid"]
    state = fold(state, first)
    last = D.mark_paid(state, "m1", 200, 20)
    assert [e for e, _ in last] == ["MilestonePaid", "ContractCompleted"]
    assert last[1][1] == {
        "contract_id": "c1",
        "buyer_id": "buyer",
        "seller_id": "seller",
        "currency": "USD",
        "total_amount": 300,
        "total_paid": 300,
        "on_time": True,
        "late_milestones": [],
    }
    assert D.mark_paid(fold(state, last), "m1", 200, 20) == []


def test_late_delivery_is_recorded_in_the_outcome():
    state = active(100)
    late = TODAY + timedelta(days=11)
    state = submit(state, "m0", at=datetime(late.year, late.month, late.day, tzinfo=UTC))
    state = fold(state, D.approve(state, "buyer", "m0"))
    _, completed = D.mark_paid(state, "m0", 100, 10)
    assert completed[1]["on_time"] is False and completed[1]["late_milestones"] == ["m0"]


def test_overdue_milestones_are_visible():
    state = active(100, 200)
    assert D.overdue_milestones(state, TODAY) == []
    assert D.overdue_milestones(state, TODAY + timedelta(days=15)) == ["m0"]
    assert D.overdue_milestones(state, TODAY + timedelta(days=25)) == ["m0", "m1"]
    state = submit(state, "m0")
    assert D.overdue_milestones(state, TODAY + timedelta(days=25)) == ["m1"]


def test_a_dispute_freezes_the_milestone_and_an_administrator_splits_it():
    state = active(1_000, 200)
    with pytest.raises(Forbidden):
        D.open_dispute(state, "stranger", "m0", "no work")
    state = fold(state, D.open_dispute(state, "buyer", "m0", "nothing delivered"))
    with pytest.raises(Conflict):
        D.submit_work(state, "seller", "m0", "late", [], T0)
    with pytest.raises(Conflict):
        D.open_dispute(state, "seller", "m0", "again")
    with pytest.raises(InvalidInput):
        D.resolve_dispute(state, "admin", "m0", 1_001, "")
    state = fold(state, D.resolve_dispute(state, "admin", "m0", 600, "half done"))
    assert D.mark_settled(state, "m0", 600, 60, 400)[0][0] == "MilestoneSettled"
    state = fold(state, D.mark_settled(state, "m0", 600, 60, 400))
    assert D.mark_settled(state, "m0", 600, 60, 400) == []  # once
    state = submit(state, "m1")
    state = fold(state, D.approve(state, "buyer", "m1"))
    _, completed = D.mark_paid(state, "m1", 200, 20)
    assert completed[1]["total_paid"] == 800 and completed[1]["total_amount"] == 1_200


def test_milestones_change_only_by_agreement_and_only_before_funding():
    offered = fold(
        Contract(),
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100, 200), DAY14, TODAY),
    )
    state = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    state = fold(state, D.mark_funded(state, "m0", 100, "ch"))
    extra = {**terms(50)["milestones"][0], "milestone_id": "m9", "title": "extra"}
    add = {"action": "add", "milestone_id": "m9", "milestone": extra}
    state = fold(state, D.propose_change(state, "seller", "x1", add, TODAY))
    with pytest.raises(Forbidden):
        D.respond_to_change(state, "seller", "x1", True, TODAY)
    state = fold(state, D.respond_to_change(state, "buyer", "x1", True, TODAY))
    assert state.milestones["m9"].amount == 50 and not state.pending_changes
    with pytest.raises(Conflict, match="nobody has funded"):
        D.propose_change(state, "buyer", "x2", {"action": "remove", "milestone_id": "m0"}, TODAY)
    state = fold(
        state,
        D.propose_change(state, "buyer", "x3", {"action": "remove", "milestone_id": "m1"}, TODAY),
    )
    state = fold(state, D.respond_to_change(state, "seller", "x3", False, TODAY))
    assert state.milestones["m1"].status == "pending"


def test_removing_the_last_open_milestone_completes_the_contract():
    offered = fold(
        Contract(),
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100, 200), DAY14, TODAY),
    )
    state = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    state = fold(state, D.mark_funded(state, "m0", 100, "ch"))
    state = submit(state, "m0")
    state = fold(state, D.approve(state, "buyer", "m0"))
    state = fold(state, D.mark_paid(state, "m0", 100, 10))
    remove = {"action": "remove", "milestone_id": "m1"}
    state = fold(state, D.propose_change(state, "seller", "x", remove, TODAY))
    events = D.respond_to_change(state, "buyer", "x", True, TODAY)
    assert [e for e, _ in events] == ["MilestoneChangeAccepted", "ContractCompleted"]
    assert events[1][1]["total_amount"] == 100


def test_cancellation_needs_agreement_once_money_is_held():
    state = active(100, 200)
    state = fold(state, D.propose_cancellation(state, "seller", "cannot continue"))
    with pytest.raises(Conflict):
        D.propose_cancellation(state, "buyer", "me too")
    with pytest.raises(Forbidden):
        D.respond_to_cancellation(state, "seller", True)
    (cancelled,) = D.respond_to_cancellation(state, "buyer", True)
    assert cancelled[0] == "ContractCancelled"
    assert cancelled[1]["refund_milestone_ids"] == ["m0", "m1"]
    assert cancelled[1]["by_agreement"] is True


def test_the_buyer_cancels_alone_before_anything_is_funded():
    offered = fold(
        Contract(), D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), DAY14, TODAY)
    )
    state = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    (cancelled,) = D.propose_cancellation(state, "buyer", "changed plans")
    assert cancelled[1]["by_agreement"] is False and cancelled[1]["refund_milestone_ids"] == []
    assert D.propose_cancellation(state, "seller", "x")[0][0] == "CancellationProposed"
