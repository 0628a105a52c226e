"""Work-room signals through the HTTP API: a progress update notifies the
buyer; the reminders' timer notifies each party once, however often it ticks."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import Deal
from tests.integration.test_identity_api import assert_problem

pytestmark = pytest.mark.integration


def notifications(deal: Deal, token: str, kind: str) -> list[dict]:
    items = deal.get("/me/notifications", token, params={"limit": 100}).json()["items"]
    return [n for n in items if n["kind"] == kind]


def test_progress_notifies_the_buyer_and_each_reminder_arrives_once(deal: Deal):
    buyer, seller, stranger = (
        deal.signup(["buyer"]),
        deal.signup(["seller"]),
        deal.signup(["seller"]),
    )
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, 30_000, due_in_days=1)  # the earliest due date
    cid = contract["contract_id"]
    m1 = contract["milestones"][0]["milestone_id"]

    # A progress update: the seller's alone, on a milestone of the contract.
    path = f"/contracts/{cid}/milestones/{m1}/progress"
    assert_problem(deal.post(path, {"note": "Half way"}, b), 403, "forbidden")
    assert_problem(deal.post(path, {"note": "x"}, stranger["access_token"]), 403, "forbidden")
    missing = f"/contracts/{cid}/milestones/nope/progress"
    assert_problem(deal.post(missing, {"note": "x"}, s), 404, "not_found")
    assert deal.post(path, {"note": "Half way"}, s).status_code == 200
    (progress,) = wait_until(lambda: notifications(deal, b, "progress_reported"), what="progress")
    assert progress["link"] == {"type": "contract", "id": cid, "milestone_id": m1}

    # Unfunded, nothing is owed: no reminder. Funded and due tomorrow: due soon, once.
    assert deal.fund(b, cid, m1).status_code == 201
    wait_until(lambda: notifications(deal, s, "milestone_due_soon"), what="due-soon reminder")
    time.sleep(3)  # the timer ticks every second
    assert len(notifications(deal, s, "milestone_due_soon")) == 1
    assert notifications(deal, b, "milestone_due_soon") == []

    # Submitted: the buyer is told the review period is running out.
    assert deal.post(f"/contracts/{cid}/milestones/{m1}/submit", {"note": "Done"}, s).ok
    (approval,) = wait_until(
        lambda: notifications(deal, b, "approval_due_soon"), what="approval reminder"
    )
    assert "approved automatically" in approval["title"]
