"""The product's whole buyer and seller journey, through the gateway's HTTP API
only, asserting at every step what each party sees."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, timedelta
from typing import Any

from tests.integration.stack import Client
from tests.integration.test_identity_api import png

SELLER_REVIEW = {
    "rating": 5,
    "categories": {"quality": 5, "communication": 5, "expertise": 4, "deadlines": 5, "value": 4},
    "text": "Clean code, delivered on time.",
}
BUYER_REVIEW = {
    "rating": 5,
    "categories": {"clarity": 5, "communication": 4, "payment_promptness": 5},
    "text": "Clear brief, fast payments.",
}
FEE_BPS = 1_000


def milestones(*amounts: int) -> list[dict[str, Any]]:
    return [
        {
            "title": f"Part {i + 1}",
            "description": "See the scope.",
            "acceptance_criteria": "Tests pass on CI.",
            "amount": amount,
            "due_date": (date.today() + timedelta(days=14 * (i + 1))).isoformat(),
            "revision_limit": 2,
        }
        for i, amount in enumerate(amounts)
    ]


def kinds(user: Client) -> list[str]:
    items = user.ok("GET", "/me/notifications", params={"limit": 100})["items"]
    return [n["kind"] for n in items]


def journey(base: str, failures: Counter | None = None, full: bool = True) -> dict[str, Any]:
    """One buyer and one seller from sign-up to reviews. ``full``: every step
    of the product (the alert, the interview, revisions, reviews); otherwise
    only the money path, for many journeys at once. Returns what the test
    checks at the end (ids and the amounts that moved)."""
    tag = uuid.uuid4().hex[:8]
    buyer = Client(base, failures).sign_up(["buyer"])
    seller = Client(base, failures).sign_up(["seller"])

    # Profiles: the buyer's business, the seller's skills and a portfolio sample.
    buyer.ok(
        "PATCH",
        f"/users/{buyer.user_id}/buyer-profile",
        {"company_name": f"Acme {tag}", "industry": "Retail", "company_size": "11-50"},
    )
    sample = seller.upload(png(4, 4), "portfolio", "shop.png")
    seller.ok(
        "PATCH",
        f"/users/{seller.user_id}/seller-profile",
        {"headline": "Django developer", "skills": ["Python", "Django", f"tag{tag}"]},
    )
    seller.ok(
        "POST",
        f"/users/{seller.user_id}/portfolio",
        {"title": "A furniture shop", "file_ids": [sample["file_id"]]},
    )
    public = buyer.see(
        f"/users/{seller.user_id}/profile",
        lambda p: len((p.get("seller") or {}).get("portfolio") or []) == 1,
    )
    assert public["seller"]["headline"] == "Django developer" and "email" not in public

    if full:
        alert = seller.ok("POST", "/alerts", {"name": "my tag", "skills": [f"tag{tag}"]})
        assert alert["seller_id"] == seller.user_id

    # The buyer posts a project with an attachment.
    brief = buyer.upload(b"%PDF-1.4\n% the brief\n", "attachment", "brief.pdf")
    project = buyer.ok(
        "POST",
        "/projects",
        {
            "title": f"Build a shop {tag}",
            "description": "An online shop for handmade furniture, with payments and stock.",
            "scope": "Backend and admin",
            "objectives": ["launch by spring"],
            "budget": {"type": "fixed", "amount": 300_000, "currency": "USD"},
            "deadline": (date.today() + timedelta(days=60)).isoformat(),
            "skills": ["Python", f"tag{tag}"],
            "attachment_ids": [brief["file_id"]],
        },
        status=201,
    )
    project_id = project["project_id"]
    if full:
        matches = seller.see(
            "/alerts/matches",
            lambda page: any(m["project_id"] == project_id for m in page["items"]),
        )
        assert matches["items"][0]["title"] == project["title"]
    seller.see(f"/projects/{project_id}", lambda p: p["status"] == "open")

    # The seller proposes; the buyer interviews them by message, with a file.
    proposal = seller.ok(
        "POST",
        f"/projects/{project_id}/proposals",
        {
            "cover_letter": "I have built three shops like this one; here is how I would start.",
            "price": {"type": "fixed", "amount": 280_000, "currency": "USD"},
            "duration_days": 40,
        },
        status=201,
    )
    proposal_id = proposal["proposal_id"]
    listed = buyer.see(f"/projects/{project_id}/proposals", lambda page: len(page["items"]) == 1)
    assert listed["items"][0]["seller"]["user_id"] == seller.user_id
    if full:
        conversation = buyer.ok("POST", "/conversations", {"proposal_id": proposal_id})
        path = f"/conversations/{conversation['conversation_id']}"
        buyer.ok("POST", f"{path}/messages", {"text": "Can you show similar work?"}, status=201)
        shot = seller.upload(png(5, 5), "message", "similar.png")
        seller.ok(
            "POST",
            f"{path}/messages",
            {"text": "Here is one.", "file_ids": [shot["file_id"]]},
            status=201,
        )
        inbox = buyer.see("/me/conversations", lambda c: c["total_unread"] >= 1)
        assert inbox["items"][0]["conversation_id"] == conversation["conversation_id"]
        messages = buyer.ok("GET", f"{path}/messages", params={"order": "asc"})["items"]
        assert [m["text"] for m in messages][-1] == "Here is one."
        buyer.ok("POST", f"{path}/read", {"up_to": messages[-1]["seq"]})
        seller.see(path, lambda c: c["read_by_other"] == messages[-1]["seq"])
        buyer.see(f"/files/{shot['file_id']}", lambda f: f["file_id"] == shot["file_id"])
    buyer.ok("POST", f"/proposals/{proposal_id}/shortlist")
    seller.see(f"/proposals/{proposal_id}", lambda p: p["status"] == "submitted")

    # Offer, change request, revised offer, acceptance.
    offer = buyer.ok(
        "POST",
        f"/proposals/{proposal_id}/offer",
        {"terms": {"currency": "USD", "scope": "The shop.", "milestones": milestones(150_000)}},
        status=201,
    )
    contract_id = offer["contract_id"]
    contract_path = f"/contracts/{contract_id}"
    if full:
        seller.see(contract_path, lambda c: c["status"] == "offered")
        seller.ok("POST", f"{contract_path}/request-changes", {"message": "Two parts, please."})
        buyer.see(contract_path, lambda c: c["status"] == "changes_requested")
    amounts = (150_000, 130_000)
    buyer.ok(
        "POST",
        f"{contract_path}/revise",
        {"terms": {"currency": "USD", "scope": "The shop.", "milestones": milestones(*amounts)}},
    )
    seller.see(contract_path, lambda c: c["offer_version"] == 2)
    active = seller.ok("POST", f"{contract_path}/accept", {"version": 2})
    assert active["status"] == "active"
    m1, m2 = (m["milestone_id"] for m in active["milestones"])
    buyer.see(f"/projects/{project_id}", lambda p: p["status"] == "awarded")

    # Two milestones funded at once.
    funded = buyer.ok(
        "POST",
        f"{contract_path}/fund",
        {"milestone_ids": [m1, m2], "payment_method": "pm_card_visa"},
        status=201,
    )
    assert funded["amount"] == sum(amounts)
    seller.see(contract_path, lambda c: all(m["status"] == "funded" for m in c["milestones"]))

    # Milestone 1: submit, changes requested, resubmit, approved.
    work = seller.upload(b"%PDF-1.4\n% the work\n", "deliverable", "part1.pdf")
    seller.ok(
        "POST",
        f"{contract_path}/milestones/{m1}/submit",
        {"note": "Part 1", "file_ids": [work["file_id"]]},
    )
    if full:
        buyer.ok("POST", f"{contract_path}/milestones/{m1}/request-changes", {"reason": "Logo"})
        seller.see(contract_path, lambda c: c["milestones"][0]["status"] == "changes_requested")
        seller.ok("POST", f"{contract_path}/milestones/{m1}/submit", {"note": "Bigger logo"})
    buyer.ok("POST", f"{contract_path}/milestones/{m1}/approve")
    # Milestone 2: submitted and left unanswered: the review period approves it.
    seller.ok("POST", f"{contract_path}/milestones/{m2}/submit", {"note": "Part 2"})
    done = buyer.see(contract_path, lambda c: c["status"] == "completed", timeout=150)
    assert [m["status"] for m in done["milestones"]] == ["paid", "paid"]
    history = buyer.ok("GET", f"{contract_path}/history")["items"]
    automatic = [h["data"]["automatic"] for h in history if h["type"] == "MilestoneApproved"]
    assert automatic == [False, True]

    # The seller is paid out; the books show it.
    net = sum(a - (a * FEE_BPS + 5_000) // 10_000 for a in amounts)
    seller.see("/me/balance", lambda b: b["balances"] and b["balances"][0]["available"] == net)
    seller.ok("POST", "/me/payouts", {"amount": net, "currency": "USD"}, status=201)
    seller.see("/me/balance", lambda b: b["balances"][0]["available"] == 0)
    escrow = buyer.see(
        f"{contract_path}/escrow", lambda e: all(h["held"] == 0 for h in e["holds"]) and e["holds"]
    )
    assert sum(p["amount"] for p in escrow["postings"]) == 0

    if full:
        # Both review; the seller's reputation shows on their profile and next proposal.
        buyer.ok("POST", f"{contract_path}/reviews", SELLER_REVIEW, status=201)
        seller.see(f"{contract_path}/reviews", lambda r: r["pending_from_other"])
        revealed = seller.ok("POST", f"{contract_path}/reviews", BUYER_REVIEW, status=201)
        assert revealed["revealed"] is True
        profile = buyer.see(
            f"/users/{seller.user_id}/profile",
            lambda p: (p["reputation"]["as_seller"] or {}).get("reviews") == 1,
        )
        score = profile["reputation"]["as_seller"]["score"]
        assert score > 3.5
        other = Client(base, failures).sign_up(["buyer"])
        next_project = other.ok(
            "POST",
            "/projects",
            {
                "title": f"Another shop {tag}",
                "description": "A second shop, a bigger one, with a warehouse system.",
                "budget": {"type": "fixed", "amount": 500_000, "currency": "USD"},
                "deadline": (date.today() + timedelta(days=90)).isoformat(),
                "skills": ["Python"],
            },
            status=201,
        )
        seller.see(f"/projects/{next_project['project_id']}", lambda p: p["status"] == "open")
        seller.ok(
            "POST",
            f"/projects/{next_project['project_id']}/proposals",
            {
                "cover_letter": "I just finished a shop like yours; see my reviews.",
                "price": {"type": "fixed", "amount": 450_000, "currency": "USD"},
                "duration_days": 60,
            },
            status=201,
        )
        offered = other.see(
            f"/projects/{next_project['project_id']}/proposals", lambda page: page["items"]
        )
        assert offered["items"][0]["seller"]["reputation"]["score"] == score
        for user, expected in (
            (
                seller,
                {"offer_received", "milestone_funded", "changes_requested", "payment_released"},
            ),
            (buyer, {"proposal_received", "offer_accepted", "work_submitted", "reviews_revealed"}),
        ):
            user.see(
                "/me/notifications", lambda n, e=expected: e <= {i["kind"] for i in n["items"]}
            )

    return {
        "contract_id": contract_id,
        "buyer_id": buyer.user_id,
        "seller_id": seller.user_id,
        "buyer_email": buyer.email,
        "seller_email": seller.email,
        "tag": tag,
        "charged": sum(amounts),
        "paid_out": net,
    }
