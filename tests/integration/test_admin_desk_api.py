"""The administrators' desk, through the gateway's HTTP API against every real
service, RabbitMQ and PostgreSQL: the open disputes with their amounts and
age, a disputed contract's case (contract, history, escrow, work room, files)
with every read recorded in the log, no decision on one's own contract, and
reviews only of real work."""

from __future__ import annotations

import pytest

from shared.eventstore import StreamNotFound
from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import Deal
from tests.integration.test_identity_api import assert_problem, png

pytestmark = pytest.mark.integration


def disputed_contract(deal: Deal, buyer: dict, seller: dict) -> tuple[str, str, dict]:
    """A funded milestone with a delivery and a work-room file, disputed by the
    buyer: (contract id, milestone id, the files' ids by kind)."""
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, 40_000)
    cid, m1 = contract["contract_id"], contract["milestones"][0]["milestone_id"]
    assert deal.fund(b, cid, m1).status_code == 201
    deal.milestone_status(s, cid, m1, "funded")
    work = deal.upload(s, png(2, 2), "deliverable", "work.png").json()["file_id"]
    submitted = deal.post(
        f"/contracts/{cid}/milestones/{m1}/submit", {"note": "Done", "file_ids": [work]}, s
    )
    assert submitted.status_code == 200, submitted.text
    room = deal.post("/conversations", {"contract_id": cid}, b)
    assert room.status_code in (200, 201), room.text
    shot = deal.upload(b, png(3, 3), "message", "broken.png").json()["file_id"]
    said = deal.post(
        f"/conversations/{room.json()['conversation_id']}/messages",
        {"text": "The page is broken on phones", "file_ids": [shot]},
        b,
    )
    assert said.status_code == 201, said.text
    disputed = deal.post(
        f"/contracts/{cid}/milestones/{m1}/dispute", {"reason": "Broken on phones"}, b
    )
    assert disputed.status_code == 200, disputed.text
    return cid, m1, {"delivered": work, "sent": shot}


def test_an_administrator_reads_a_disputed_case_and_every_read_is_recorded(deal: Deal):
    buyer, seller, admin = deal.signup(["buyer"]), deal.signup(["seller"]), deal.admin()
    a = admin["access_token"]
    cid, m1, files = disputed_contract(deal, buyer, seller)

    assert_problem(deal.get("/admin/disputes", buyer["access_token"]), 403, "forbidden")
    listed = deal.visible(
        "/admin/disputes", a, check=lambda d: any(i["contract_id"] == cid for i in d["items"])
    )
    (dispute,) = [i for i in listed["items"] if i["contract_id"] == cid]
    assert (dispute["kind"], dispute["milestone_id"], dispute["amount"]) == (
        "milestone",
        m1,
        40_000,
    )
    assert dispute["currency"] == "USD" and dispute["opened_by"] == buyer["user_id"]
    assert dispute["reason"] == "Broken on phones" and dispute["age_seconds"] >= 0

    case = deal.visible(f"/admin/disputes/{cid}", a, check=lambda c: len(c["files"]) == 2)
    assert case["contract"]["contract_id"] == cid
    assert "MilestoneDisputed" in [h["type"] for h in case["history"]]
    assert [h["held"] for h in case["escrow"]["holds"]] == [40_000]  # frozen, not released
    assert [m["text"] for m in case["messages"]] == ["The page is broken on phones"]
    assert {f["file_id"] for f in case["files"]} == set(files.values())
    for file_id in files.values():
        download = deal.get(f"/admin/disputes/{cid}/files/{file_id}/content", a)
        assert download.status_code == 200 and download.content.startswith(b"\x89PNG")
    other = deal.upload(a, png(), "attachment", "x.png").json()["file_id"]
    assert_problem(deal.get(f"/admin/disputes/{cid}/files/{other}/content", a), 404, "not_found")
    assert deal.get(f"/files/{files['sent']}/content", a).status_code == 403  # only the desk

    reads = [
        (e.data["admin_id"], e.data["part"])
        for e in deal.store.read_stream(f"casefile-{cid}")
        if e.type == "DisputeCaseRead"
    ]
    assert ("admin", "case") not in reads  # (ids, not roles)
    assert reads.count((admin["user_id"], "case")) >= 1
    assert {p for _, p in reads if p.startswith("file:")} == {f"file:{f}" for f in files.values()}

    resolved = deal.post(
        f"/contracts/{cid}/milestones/{m1}/resolve",
        {"to_seller": 10_000, "note": "Half of it works"},
        a,
        headers=deal.key(),
    )
    assert resolved.status_code == 200, resolved.text
    wait_until(
        lambda: all(
            i["contract_id"] != cid for i in deal.get("/admin/disputes", a).json()["items"]
        ),
        what="the dispute leaves the desk",
    )
    assert_problem(deal.get(f"/admin/disputes/{cid}", a), 409, "conflict")


def test_an_administrator_decides_no_dispute_on_their_own_contract(deal: Deal):
    admin, seller = deal.admin(), deal.signup(["seller"])
    cid, m1, _ = disputed_contract(deal, admin, seller)
    a = admin["access_token"]
    own = deal.get(f"/admin/disputes/{cid}", a)
    assert assert_problem(own, 403, "forbidden")["reason"] == "own_contract"
    refused = deal.post(
        f"/contracts/{cid}/milestones/{m1}/resolve", {"to_seller": 0}, a, headers=deal.key()
    )
    assert assert_problem(refused, 403, "forbidden")["reason"] == "own_contract"


def test_a_contract_cancelled_before_anything_was_funded_is_not_reviewed(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b = buyer["access_token"]
    cid = deal.contract(buyer, seller, 20_000)["contract_id"]
    cancelled = deal.post(
        f"/contracts/{cid}/cancellation", {"reason": "Changed plans"}, b, headers=deal.key()
    )
    assert cancelled.status_code == 200, cancelled.text
    deal.visible(f"/contracts/{cid}", b, check=lambda c: c["status"] == "cancelled")
    review = {
        "rating": 1,
        "categories": {
            "quality": 1,
            "communication": 1,
            "expertise": 1,
            "deadlines": 1,
            "value": 1,
        },
        "text": "Never started",
    }
    refused = deal.post(f"/contracts/{cid}/reviews", review, b)
    assert assert_problem(refused, 409, "conflict")["reason"] == "nothing_to_review"
    # Reputation heard of the end (the review was refused for it, not for
    # "contract_not_ended") and opened no window, so the seller has no rates.
    with pytest.raises(StreamNotFound):
        deal.store.read_stream(f"feedback-{cid}")
    profile = deal.get(f"/users/{seller['user_id']}/profile").json()
    assert profile["reputation"]["as_seller"] is None
