"""Offers and awards through the HTTP API: the offer's history with each
version's answer, the buyer's withdrawal, expiry by the contracts service's
clock, and the other proposers told when a contract starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import Deal, offer_terms
from tests.integration.test_identity_api import assert_problem

pytestmark = pytest.mark.integration

EXPIRY_SECONDS = 6


def kinds(deal: Deal, token: str) -> list[str]:
    items = deal.get("/me/notifications", token, params={"limit": 100}).json()["items"]
    return [n["kind"] for n in items]


def test_history_withdrawal_and_the_proposers_not_selected(deal: Deal):
    buyer = deal.signup(["buyer"])
    chosen, passed_over, withdrawn_from, stranger = (deal.signup(["seller"]) for _ in range(4))
    b = buyer["access_token"]
    project = deal.project(b)
    pid = project["project_id"]
    proposals = {
        name: deal.post(f"/projects/{pid}/proposals", deal.proposal_body(), who["access_token"])
        for name, who in (("a", chosen), ("b", withdrawn_from), ("c", passed_over))
    }
    for answer in proposals.values():
        assert answer.status_code == 201, answer.text
    a, bb, c = (proposals[k].json()["proposal_id"] for k in "abc")

    # The seller's change request is in the offer's history, for the buyer to read.
    sent = deal.post(f"/proposals/{a}/offer", {"terms": offer_terms(100_000)}, b)
    assert sent.status_code == 201, sent.text
    cid = sent.json()["contract_id"]
    lasts = datetime.fromisoformat(sent.json()["offer_expires_at"]) - datetime.now(UTC)
    assert timedelta(days=13, hours=23) < lasts <= timedelta(days=14)  # OFFER_EXPIRY_DAYS
    s = chosen["access_token"]
    asked = deal.post(f"/contracts/{cid}/request-changes", {"message": "Two parts, please."}, s)
    assert asked.status_code == 200 and asked.json()["status"] == "changes_requested", asked.text
    (v1,) = deal.visible(f"/contracts/{cid}/offers", b, check=lambda o: o["items"][0]["answers"])[
        "items"
    ]
    assert v1["answers"][0]["type"] == "changes_requested"
    assert v1["answers"][0]["message"] == "Two parts, please."
    assert v1["answers"][0]["by"] == chosen["user_id"]
    assert v1["expires_at"] == sent.json()["offer_expires_at"]
    assert_problem(deal.get(f"/contracts/{cid}/offers", stranger["access_token"]), 403, "forbidden")
    revised = deal.post(f"/contracts/{cid}/revise", {"terms": offer_terms(60_000, 40_000)}, b)
    assert revised.status_code == 200 and revised.json()["offer_version"] == 2, revised.text

    # The buyer withdraws another offer before it is answered; it stays withdrawn.
    other = deal.post(f"/proposals/{bb}/offer", {"terms": offer_terms(90_000)}, b).json()
    oid, w = other["contract_id"], withdrawn_from["access_token"]
    assert_problem(deal.post(f"/contracts/{oid}/withdraw", {"reason": "x"}, w), 403, "forbidden")
    out = deal.post(f"/contracts/{oid}/withdraw", {"reason": "Budget moved."}, b)
    assert out.status_code == 200 and out.json()["status"] == "withdrawn", out.text
    assert out.json()["offer_expires_at"] is None  # (it waits for no answer any more)
    refused = assert_problem(
        deal.post(f"/contracts/{oid}/accept", {"version": 1}, w), 409, "conflict"
    )
    assert refused["state"] == "withdrawn"
    assert_problem(deal.post(f"/contracts/{oid}/withdraw", {}, b), 409, "conflict")
    (withdrawn_version,) = deal.visible(
        f"/contracts/{oid}/offers", w, check=lambda o: o["items"][0]["answers"]
    )["items"]
    assert [a["type"] for a in withdrawn_version["answers"]] == ["withdrawn"]
    assert withdrawn_version["answers"][0]["message"] == "Budget moved."
    wait_until(lambda: "offer_withdrawn" in kinds(deal, w), what="withdrawal notice")

    # Accepting the revision starts the contract: the other open proposals read
    # "not selected" and their sellers are told; the chosen one is hired.
    accepted = deal.post(f"/contracts/{cid}/accept", {"version": 2}, s)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active", accepted.text
    statuses = deal.visible(
        f"/projects/{pid}/proposals",
        b,
        check=lambda page: {p["status"] for p in page["items"]} == {"hired", "not_selected"},
    )
    by_id = {p["proposal_id"]: p["status"] for p in statuses["items"]}
    assert by_id == {a: "hired", bb: "not_selected", c: "not_selected"}
    for seller in (passed_over, withdrawn_from):
        wait_until(
            lambda seller=seller: "proposal_not_selected" in kinds(deal, seller["access_token"]),
            what="not-selected notice",
        )
    assert "proposal_not_selected" not in kinds(deal, s)
    mine = deal.get(f"/proposals/{c}", passed_over["access_token"]).json()
    assert mine["status"] == "not_selected"
    assert_problem(
        deal.post(f"/proposals/{c}/withdraw", {}, passed_over["access_token"]), 409, "conflict"
    )
    history = deal.visible(
        f"/contracts/{cid}/offers", s, check=lambda o: o["items"][-1]["answers"]
    )["items"]
    assert [[a["type"] for a in v["answers"]] for v in history] == [
        ["changes_requested"],
        ["accepted"],
    ]


@pytest.mark.parametrize("deal", [{"OFFER_EXPIRY_DAYS": EXPIRY_SECONDS / 86_400}], indirect=True)
def test_an_unanswered_offer_expires_and_a_revision_sends_it_again(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    _, offer = deal.offer(buyer, seller, 50_000)
    cid = offer["contract_id"]
    expired = deal.visible(
        f"/contracts/{cid}",
        s,
        check=lambda c: c["status"] == "expired",
        timeout=EXPIRY_SECONDS + 20,
    )
    assert expired["offer_version"] == 1
    refused = assert_problem(
        deal.post(f"/contracts/{cid}/accept", {"version": 1}, s), 409, "conflict"
    )
    assert refused["reason"] == "offer_expired"
    refused = deal.post(f"/contracts/{cid}/request-changes", {"message": "More time?"}, s)
    assert assert_problem(refused, 409, "conflict")["reason"] == "offer_expired"
    (v1,) = deal.visible(f"/contracts/{cid}/offers", b, check=lambda o: o["items"][0]["answers"])[
        "items"
    ]
    assert v1["answers"] == [{**v1["answers"][0], "type": "expired", "by": None}]
    for token in (b, s):
        wait_until(lambda token=token: "offer_expired" in kinds(deal, token), what="expiry notice")

    # A revised version expires afresh; answered in time, it is accepted.
    revised = deal.post(f"/contracts/{cid}/revise", {"terms": offer_terms(55_000)}, b)
    assert revised.status_code == 200, revised.text
    assert revised.json()["status"] == "offered" and revised.json()["offer_version"] == 2
    assert revised.json()["offer_expires_at"] > offer["offer_expires_at"]
    accepted = deal.post(f"/contracts/{cid}/accept", {"version": 2}, s)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active", accepted.text
