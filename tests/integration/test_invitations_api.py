"""Invitations that work, through the gateway's HTTP API against every real
service, RabbitMQ and PostgreSQL: only to a seller who is not the buyer, one
per project and seller, accepted (a conversation about it opens) or declined
with a reason, and closed with their project."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_contracts_api import Deal
from tests.integration.test_identity_api import assert_problem

pytestmark = pytest.mark.integration


def test_invitations_go_to_sellers_once_and_are_accepted_declined_or_closed(deal: Deal):
    buyer = deal.signup(["buyer"])
    seller, other, third = (deal.signup(["seller"]) for _ in range(3))
    another_buyer = deal.signup(["buyer"])
    b = buyer["access_token"]
    project = deal.project(b)
    invitations = f"/projects/{project['project_id']}/invitations"

    def invite(user_id: str) -> object:
        return deal.post(invitations, {"seller_id": user_id, "message": "Interested?"}, b)

    assert_problem(invite(another_buyer["user_id"]), 422, "invalid_input")
    assert_problem(invite(buyer["user_id"]), 422, "invalid_input")
    assert_problem(invite(str(uuid.uuid4())), 404, "not_found")
    sent = invite(seller["user_id"])
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "open"
    again = assert_problem(invite(seller["user_id"]), 409, "conflict")
    assert again["reason"] == "invitation_open"

    # The invited seller accepts: a conversation about the invitation opens.
    mine = f"{invitations}/{seller['user_id']}"
    stranger = deal.post(f"{mine}/accept", None, other["access_token"])
    assert_problem(stranger, 403, "forbidden")
    accepted = deal.post(f"{mine}/accept", None, seller["access_token"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    conversation_id = accepted.json()["conversation_id"]
    said = deal.post(
        f"/conversations/{conversation_id}/messages",
        {"text": "Happy to talk about it before I propose."},
        seller["access_token"],
    )
    assert said.status_code == 201, said.text
    answered = deal.post(f"/conversations/{conversation_id}/messages", {"text": "Great: when?"}, b)
    assert answered.status_code == 201, answered.text
    assert deal.get(mine, b).json()["conversation_id"] == conversation_id
    assert_problem(deal.post(f"{mine}/accept", None, seller["access_token"]), 409, "conflict")

    # Another declines, with a reason the buyer reads; no second invitation.
    assert invite(other["user_id"]).status_code == 201
    theirs = f"{invitations}/{other['user_id']}"
    declined = deal.post(f"{theirs}/decline", {"reason": "Fully booked"}, other["access_token"])
    assert declined.status_code == 200, declined.text
    seen = deal.get(theirs, b).json()
    assert (seen["status"], seen["reason"]) == ("declined", "Fully booked")
    assert assert_problem(invite(other["user_id"]), 409, "conflict")["reason"] == (
        "invitation_declined"
    )

    # An open invitation closes with its project, and can no longer be accepted.
    assert invite(third["user_id"]).status_code == 201
    closed = deal.post(f"/projects/{project['project_id']}/close", {"reason": "found someone"}, b)
    assert closed.status_code == 200, closed.text
    last = f"{invitations}/{third['user_id']}"
    deal.visible(last, b, check=lambda i: i["status"] == "closed")
    assert_problem(deal.post(f"{last}/accept", None, third["access_token"]), 409, "conflict")
    listed = deal.get("/me/invitations", third["access_token"]).json()["items"]
    assert [i["status"] for i in listed] == ["closed"]
