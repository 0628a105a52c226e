"""Who may act on what: every operation of the API as an anonymous caller, as
an unrelated user, and as the rightful party. Only the last gets past the
check where the operation is not public. The table must name every route of
the OpenAPI document, so a new route cannot be added without its rule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from gateway.endpoint import API_PREFIX, ROUTES, openapi_path
from tests.integration.test_contracts_api import Deal, offer_terms
from tests.integration.test_identity_api import png

pytestmark = pytest.mark.integration

PUBLIC = {
    "POST /auth/register",
    "POST /auth/login",
    "POST /auth/login/two-factor",
    "POST /auth/refresh",
    "POST /auth/logout",
    "POST /auth/verify-email",
    "POST /auth/password-reset",
    "POST /auth/password-reset/confirm",
    "GET /users/{user_id}/profile",
    "GET /users/{user_id}/reviews",
    "GET /projects",
    "GET /projects/{project_id}",
    "GET /projects/{project_id}/versions",
    "GET /freelancers",
}
"""Anyone may call these (the answer differs for a logged-in user)."""
OWN = {
    "GET /me",
    "DELETE /me",
    "GET /me/export",
    "POST /auth/logout-everywhere",
    "POST /me/password",
    "POST /me/email",
    "POST /me/email/verification",
    "GET /me/two-factor",
    "POST /me/two-factor",
    "DELETE /me/two-factor",
    "POST /me/two-factor/confirm",
    "POST /me/two-factor/recovery-codes",
    "POST /projects",
    "POST /alerts",
    "GET /alerts",
    "GET /alerts/matches",
    "GET /me/proposals",
    "GET /me/projects",
    "GET /me/invitations",
    "GET /me/contracts",
    "GET /me/balance",
    "GET /me/statement",
    "POST /me/payouts",
    "GET /me/conversations",
    "GET /me/notifications",
    "POST /me/notifications/read",
    "GET /me/notifications/stream",
    "POST /me/notifications/stream-ticket",
    "POST /files",
    "GET /files",
    "GET /me/saved-freelancers",
    "PUT /me/saved-freelancers/{seller_id}",
    "DELETE /me/saved-freelancers/{seller_id}",
}
"""Logged-in users act on their own things only: there is nobody else's to reach."""
ANY_SELLER = {"POST /projects/{project_id}/proposals"}
"""Any seller may propose on an open project (a buyer may not: 403)."""

# operation -> (rightful party, body)
SCOPED: dict[str, tuple[str, Any]] = {
    "DELETE /users/{user_id}": ("admin", None),  # (the admin erases themself: run last)
    "PATCH /users/{user_id}/buyer-profile": ("buyer", {"industry": "Retail"}),
    "PATCH /users/{user_id}/seller-profile": ("seller", {"headline": "Dev"}),
    "POST /users/{user_id}/experience": (
        "seller",
        {"title": "Dev", "organisation": "Acme", "start_date": "2020-01-01"},
    ),
    "DELETE /users/{user_id}/experience/{experience_id}": ("seller", None),
    "POST /users/{user_id}/portfolio": ("seller", {"title": "A shop"}),
    "DELETE /users/{user_id}/portfolio/{item_id}": ("seller", None),
    "PATCH /projects/{project_id}": ("buyer", {"title": "A better title"}),
    "POST /projects/{project_id}/close": ("buyer", {}),
    "POST /projects/{project_id}/cancel": ("buyer", {}),
    "DELETE /alerts/{alert_id}": ("seller", None),
    "GET /projects/{project_id}/proposals": ("buyer", None),
    "GET /proposals/{proposal_id}": ("seller", None),
    "PATCH /proposals/{proposal_id}": ("seller", {"duration_days": 31}),
    "POST /proposals/{proposal_id}/withdraw": ("seller", {}),
    "POST /proposals/{proposal_id}/shortlist": ("buyer", None),
    "POST /proposals/{proposal_id}/unshortlist": ("buyer", None),
    "POST /proposals/{proposal_id}/archive": ("buyer", None),
    "POST /proposals/{proposal_id}/decline": ("buyer", {}),
    "POST /projects/{project_id}/invitations": ("buyer", "invitation"),
    "GET /projects/{project_id}/invitations/{seller_id}": ("buyer", None),
    "POST /projects/{project_id}/invitations/{seller_id}/accept": ("seller", None),
    "POST /projects/{project_id}/invitations/{seller_id}/decline": ("seller", {"reason": "x"}),
    "POST /proposals/{proposal_id}/offer": ("buyer", "offer"),
    "GET /contracts/{contract_id}": ("seller", None),
    "GET /contracts/{contract_id}/offers": ("seller", None),
    "GET /contracts/{contract_id}/history": ("buyer", None),
    "POST /contracts/{contract_id}/request-changes": ("seller", {"message": "Less scope"}),
    "POST /contracts/{contract_id}/revise": ("buyer", "offer"),
    "POST /contracts/{contract_id}/decline": ("seller", {}),
    "POST /contracts/{contract_id}/withdraw": ("buyer", {}),
    "POST /contracts/{contract_id}/accept": ("seller", {"version": 1}),
    "POST /contracts/{contract_id}/fund": ("buyer", "fund"),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/submit": ("seller", {"note": "x"}),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/request-changes": (
        "buyer",
        {"reason": "x"},
    ),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/approve": ("buyer", None),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/progress": ("seller", {"note": "x"}),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/dispute": ("buyer", {"reason": "x"}),
    "POST /contracts/{contract_id}/milestones/{milestone_id}/resolve": (
        "admin",
        {"to_seller": 0},
    ),
    "POST /contracts/{contract_id}/changes": ("seller", {"action": "remove", "milestone_id": "m"}),
    "POST /contracts/{contract_id}/changes/{change_id}/answer": ("buyer", {"accept": False}),
    "POST /contracts/{contract_id}/cancellation": ("buyer", {"reason": "x"}),
    "POST /contracts/{contract_id}/cancellation/answer": ("seller", {"accept": False}),
    "POST /contracts/{contract_id}/time": ("seller", {"day": "2026-01-01", "minutes": 60}),
    "POST /contracts/{contract_id}/weeks/{week}/approve": ("buyer", None),
    "POST /contracts/{contract_id}/weeks/{week}/dispute": ("buyer", {"reason": "x"}),
    "POST /contracts/{contract_id}/weeks/{week}/resolve": ("admin", {"to_seller": 0}),
    "GET /admin/disputes": ("admin", None),
    "GET /admin/disputes/{contract_id}": ("admin", None),
    "GET /admin/disputes/{contract_id}/files/{file_id}/content": ("admin", None),
    "POST /contracts/{contract_id}/weeks/{week}/pay": ("buyer", {"payment_method": "pm_card_visa"}),
    "POST /contracts/{contract_id}/weekly-limit": ("buyer", {"weekly_limit": 5}),
    "POST /contracts/{contract_id}/pause": ("buyer", {"paused": True}),
    "POST /contracts/{contract_id}/end": ("seller", {"reason": "x"}),
    "GET /contracts/{contract_id}/escrow": ("buyer", None),
    "POST /contracts/{contract_id}/reviews": ("buyer", "review"),
    "GET /contracts/{contract_id}/reviews": ("buyer", None),
    "POST /conversations": ("buyer", "conversation"),
    "GET /conversations/{conversation_id}": ("seller", None),
    "GET /conversations/{conversation_id}/messages": ("seller", None),
    "POST /conversations/{conversation_id}/messages": ("seller", {"text": "hi"}),
    "POST /conversations/{conversation_id}/read": ("buyer", {"up_to": 1}),
    "GET /files/{file_id}": ("seller", None),
    "GET /files/{file_id}/content": ("seller", None),
}
"""Refused for an unrelated user (403, or 404 where even existence is private)."""


def operations() -> set[str]:
    return {f"{r.method} {openapi_path(r.path).removeprefix(API_PREFIX)}" for r in ROUTES}


def test_the_table_names_every_operation():
    named = PUBLIC | OWN | ANY_SELLER | set(SCOPED)
    assert operations() - named == set(), "add the new operations to the matrix"
    assert named - operations() == set(), "the matrix names operations that do not exist"


def world(deal: Deal) -> dict[str, Any]:
    """A buyer and a seller with one of everything between them."""
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    admin = deal.admin()
    b, s = buyer["access_token"], seller["access_token"]
    experience = deal.post(
        f"/users/{seller['user_id']}/experience",
        {"title": "Dev", "organisation": "Acme", "start_date": "2020-01-01"},
        s,
    ).json()["seller"]["experience"][0]
    item = deal.post(f"/users/{seller['user_id']}/portfolio", {"title": "A shop"}, s).json()
    item_id = item["seller"]["portfolio"][0]["item_id"]
    alert = deal.post("/alerts", {"keywords": "shop"}, s).json()
    proposal, contract = deal.offer(buyer, seller, 10_000)
    conversation = deal.post("/conversations", {"proposal_id": proposal["proposal_id"]}, b).json()
    invited = deal.post(
        f"/projects/{proposal['project_id']}/invitations",
        {"seller_id": seller["user_id"], "message": "Interested?"},
        b,
    )
    assert invited.status_code == 201, invited.text
    deal.visible(invited.headers["Location"].removeprefix("/api/v1"), b)
    deal.post(f"/conversations/{conversation['conversation_id']}/messages", {"text": "hi"}, s)
    private = deal.upload(s, png(2, 2), "deliverable", "work.png").json()
    return {
        "buyer": buyer,
        "seller": seller,
        "admin": admin,
        "ids": {
            "user_id": None,  # filled per rightful party
            "experience_id": experience["experience_id"],
            "item_id": item_id,
            "alert_id": alert["alert_id"],
            "project_id": proposal["project_id"],
            "seller_id": seller["user_id"],
            "proposal_id": proposal["proposal_id"],
            "contract_id": contract["contract_id"],
            "milestone_id": contract["milestones"][0]["milestone_id"],
            "change_id": str(uuid.uuid4()),
            "week": 0,
            "conversation_id": conversation["conversation_id"],
            "file_id": private["file_id"],
        },
        "terms": offer_terms(10_000),
    }


def body_for(kind: Any, w: dict[str, Any]) -> Any:
    return (
        {
            "proposal": {
                "cover_letter": "I would build it well, and I have done it before, many times.",
                "price": {"type": "fixed", "amount": 100_000, "currency": "USD"},
                "duration_days": 30,
            },
            "invitation": {"seller_id": w["seller"]["user_id"]},
            "offer": {"terms": w["terms"]},
            "fund": {"milestone_ids": [w["ids"]["milestone_id"]], "payment_method": "pm_card_visa"},
            "review": {"rating": 5, "categories": {}, "text": "x"},
            "conversation": {"proposal_id": w["ids"]["proposal_id"]},
        }.get(kind, kind)
        if isinstance(kind, str)
        else kind
    )


def call(deal: Deal, operation: str, token: str | None, ids: dict[str, Any], body: Any):
    method, path = operation.split(" ", 1)
    url = path.format(**ids)
    headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, deal.url(url), json=body, headers=headers, timeout=30, stream=True
    )


def test_every_operation_refuses_the_anonymous_and_the_unrelated(deal: Deal):
    w = world(deal)
    stranger = deal.signup(["buyer", "seller"])
    refused_anonymously = []
    optional = {
        f"{r.method} {openapi_path(r.path).removeprefix(API_PREFIX)}"
        for r in ROUTES
        if r.auth == "optional"
    }
    for operation in sorted(operations() - PUBLIC):
        ids = {**w["ids"], "user_id": w["seller"]["user_id"]}
        response = call(deal, operation, None, ids, body_for(SCOPED.get(operation, (0, {}))[1], w))
        # Optional-login operations (files) refuse a private thing with 403.
        allowed = {401, 403} if operation in optional else {401}
        if response.status_code not in allowed:
            refused_anonymously.append((operation, response.status_code))
        response.close()
    assert refused_anonymously == []

    let_through = []
    for operation, (party, kind) in sorted(SCOPED.items()):
        owner = w[party] if party != "admin" else w["buyer"]
        ids = {**w["ids"], "user_id": owner["user_id"]}
        response = call(deal, operation, stranger["access_token"], ids, body_for(kind, w))
        if response.status_code not in (403, 404):
            let_through.append((operation, response.status_code, response.text[:200]))
        response.close()
    assert let_through == []


def test_every_scoped_operation_lets_the_rightful_party_past_the_check(deal: Deal):
    """State may still refuse them (409/422), but never authorisation."""
    w = world(deal)
    deal.visible(
        f"/contracts/{w['ids']['contract_id']}", w["seller"]["access_token"]
    )  # the views caught up
    refused = []
    # Destructive operations last, so that earlier ones still find their objects.
    last = ("DELETE", "/close", "/cancel", "/withdraw", "/decline", "/revise")
    # The world has no pending change, cancellation or ended contract: for these
    # the rightful party's 404 names that missing thing, not the contract.
    absent = {
        "POST /contracts/{contract_id}/changes/{change_id}/answer",
        "POST /contracts/{contract_id}/cancellation/answer",
        "GET /contracts/{contract_id}/reviews",
        "GET /admin/disputes/{contract_id}/files/{file_id}/content",  # no dispute, no case
    }
    ordered = sorted(SCOPED.items(), key=lambda kv: any(x in kv[0] for x in last))
    for operation, (party, kind) in ordered:
        user = w[party]
        ids = {**w["ids"], "user_id": user["user_id"]}
        response = call(deal, operation, user["access_token"], ids, body_for(kind, w))
        if response.status_code in (401, 403) or (
            response.status_code == 404 and operation not in absent
        ):
            refused.append((operation, response.status_code, response.text[:200]))
        response.close()
    assert refused == [], "\n".join(map(str, refused))
