"""The reminders' rules: due soon, overdue, approval due soon; each once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.contracts import domain as D
from services.contracts.domain import Contract
from services.contracts.tests.test_domain import PROPOSAL, T0, TODAY, active, fold, submit, terms

DEADLINE = datetime(2026, 12, 8, tzinfo=UTC)  # m0 is due on 2026-12-07, by the day's end


def kinds(state: Contract, now: datetime) -> list[tuple[str, str]]:
    return [(e, d["milestone_id"]) for e, d in D.reminders(state, now, 24, 48)]


def test_a_funded_milestone_is_due_soon_once_then_overdue_once():
    state = active(100)
    assert kinds(state, DEADLINE - timedelta(hours=25)) == []
    (soon,) = D.reminders(state, DEADLINE - timedelta(hours=23), 24, 48)
    assert soon == (
        "MilestoneDueSoon",
        {
            "milestone_id": "m0",
            "due_date": TODAY + timedelta(days=10),
            "buyer_id": "buyer",
            "seller_id": "seller",
        },
    )
    state = fold(state, [soon])
    assert kinds(state, DEADLINE - timedelta(hours=1)) == []  # not twice
    (late,) = D.reminders(state, DEADLINE, 24, 48)
    assert late[0] == "MilestoneOverdue"
    state = fold(state, [late])
    assert kinds(state, DEADLINE + timedelta(days=3)) == []


def test_no_reminder_for_unfunded_submitted_or_approved_milestones():
    offered = fold(
        Contract(),
        D.send_offer(Contract(), "c1", PROPOSAL, "buyer", terms(100), 14 * 86_400, TODAY),
    )
    unfunded = fold(offered, D.accept_offer(offered, "seller", 1, T0))
    assert kinds(unfunded, DEADLINE + timedelta(days=1)) == []
    submitted = submit(active(100), "m0", DEADLINE - timedelta(days=2))
    assert kinds(submitted, DEADLINE + timedelta(days=1)) == []  # under review: not overdue
    approved = fold(submitted, D.approve(submitted, "buyer", "m0"))
    assert kinds(approved, DEADLINE + timedelta(days=1)) == []
    assert kinds(offered, DEADLINE + timedelta(days=1)) == []  # not a contract yet


def test_a_sent_back_milestone_past_its_date_is_overdue():
    state = submit(active(100), "m0", DEADLINE - timedelta(days=3))
    state = fold(state, D.request_changes(state, "buyer", "m0", "fix it"))
    assert kinds(state, DEADLINE - timedelta(hours=2)) == []  # delivered once: not due soon
    assert kinds(state, DEADLINE + timedelta(hours=1)) == [("MilestoneOverdue", "m0")]


def test_approval_due_soon_once_per_submission_before_auto_approval():
    at = datetime(2026, 11, 28, 9, tzinfo=UTC)
    state = submit(active(100), "m0", at)
    approves_at = at + timedelta(days=14)
    assert state.milestones["m0"].review_due_at == approves_at  # what auto_approvals acts on
    assert kinds(state, approves_at - timedelta(hours=49)) == []
    (soon,) = D.reminders(state, approves_at - timedelta(hours=47), 24, 48)
    assert soon[0] == "ApprovalDueSoon"
    assert (soon[1]["submission"], soon[1]["approves_at"], soon[1]["hours"]) == (1, approves_at, 47)
    state = fold(state, [soon])
    assert kinds(state, approves_at - timedelta(hours=1)) == []
    assert kinds(state, approves_at) == []  # then it is approved, not reminded
    # The buyer sends it back; the second submission is its own reminder.
    state = fold(state, D.request_changes(state, "buyer", "m0", "fix it"))
    again = submit(state, "m0", at + timedelta(days=1))
    (second,) = D.reminders(again, approves_at + timedelta(hours=1), 24, 48)
    assert second[0] == "ApprovalDueSoon" and second[1]["submission"] == 2
