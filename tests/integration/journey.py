"""The product's whole buyer and seller journey, through the gateway's HTTP API
only, asserting at every step what each party sees."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from tests.integration.helpers import Authenticator, wait_until
from tests.integration.stack import PASSWORD, Client
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


def net_of_fee(amount: int) -> int:
    return amount - (amount * FEE_BPS + 5_000) // 10_000


def administrator(base: str, failures: Counter | None, grant: Callable[[str], None]) -> Client:
    """An operator made administrator by the operators' command, who turns on
    two-factor sign-in (the role needs it) and signs in with a code."""
    admin = Client(base, failures).sign_up(["buyer"])
    grant(admin.email)
    setup = admin.ok("POST", "/me/two-factor", {"current_password": PASSWORD}, status=201)
    app = Authenticator(setup["secret"])
    admin.ok("POST", "/me/two-factor/confirm", {"code": app.code()})
    admin.token = None
    first = admin.post("/auth/login", {"email": admin.email, "password": PASSWORD})
    assert first.status_code == 401, first.text
    tokens = admin.ok(
        "POST",
        "/auth/login/two-factor",
        {"challenge": first.json()["challenge"], "code": app.code()},
    )
    assert "admin" in tokens["roles"], tokens
    admin.token = tokens["access_token"]
    return admin


def opens(user: Client, url: str, starts: bytes) -> None:
    """The user downloads a file (grants follow the events that attach it)."""

    def read() -> bool:
        response = user.get(url.removeprefix("/api/v1"))
        return response.status_code == 200 and response.content.startswith(starts)

    wait_until(read, what=f"{user.email} opens {url}")


def kinds(user: Client) -> list[str]:
    items = user.ok("GET", "/me/notifications", params={"limit": 100})["items"]
    return [n["kind"] for n in items]


def journey(
    base: str,
    failures: Counter | None = None,
    full: bool = True,
    grant_admin: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One buyer and one seller from sign-up to reviews. ``full``: every step
    of the product (the alert, the brief, talent search, the invitation and a
    talk before the proposal, its samples, the interview, revisions, reviews);
    otherwise only the money path, for many journeys at once. ``grant_admin``
    (with ``full``) makes an administrator, who reads the work room of a
    disputed third milestone and splits it. Returns what the test checks at
    the end (ids and the amounts that moved)."""
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
    portfolio = seller.ok(
        "POST",
        f"/users/{seller.user_id}/portfolio",
        {"title": "A furniture shop", "file_ids": [sample["file_id"]]},
    )
    item_id = portfolio["seller"]["portfolio"][0]["item_id"]
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
    if full:
        # The seller opens the brief; the buyer finds the seller, invites them,
        # and they talk about it before any proposal.
        opens(seller, f"/api/v1/files/{brief['file_id']}/content", b"%PDF")
        found = buyer.see(
            "/freelancers",
            lambda page: [i for i in page["items"] if i["user_id"] == seller.user_id],
            params={"q": "django", "skills": f"tag{tag}"},
        )
        assert found["items"][0]["headline"] == "Django developer"
        invitations = f"/projects/{project_id}/invitations"
        invited = wait_until(
            lambda: (
                buyer.post(
                    invitations, {"seller_id": seller.user_id, "message": "Would you build it?"}
                ).status_code
                == 201
            ),
            what="the invitation (bidding has learned of the project and the seller)",
        )
        assert invited
        accepted = seller.ok("POST", f"{invitations}/{seller.user_id}/accept")
        talk = f"/conversations/{accepted['conversation_id']}"
        seller.ok("POST", f"{talk}/messages", {"text": "Gladly: is stock per item?"}, status=201)
        buyer.see(f"{talk}/messages", lambda page: len(page["items"]) == 1)
        buyer.ok("POST", f"{talk}/messages", {"text": "Per item and per colour."}, status=201)

    # The seller proposes, with a sample; the buyer opens it, then interviews
    # them by message, with a file.
    proposal = seller.ok(
        "POST",
        f"/projects/{project_id}/proposals",
        {
            "cover_letter": "I have built three shops like this one; here is how I would start.",
            "price": {"type": "fixed", "amount": 280_000, "currency": "USD"},
            "duration_days": 40,
            "portfolio_item_ids": [item_id],
        },
        status=201,
    )
    proposal_id = proposal["proposal_id"]
    listed = buyer.see(f"/projects/{project_id}/proposals", lambda page: len(page["items"]) == 1)
    assert listed["items"][0]["seller"]["user_id"] == seller.user_id
    if full:
        (shown,) = listed["items"][0]["samples"]
        assert (shown["title"], shown["type"]) == ("A furniture shop", "image/png")
        opens(buyer, shown["url"], b"\x89PNG")
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
        interview = conversation["conversation_id"]
        inbox = buyer.see(
            "/me/conversations",
            lambda c: [i for i in c["items"] if i["conversation_id"] == interview and i["unread"]],
        )
        assert inbox["items"][0]["conversation_id"] == interview  # the latest first
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
    disputed = full and grant_admin is not None
    amounts: tuple[int, ...] = (150_000, 130_000, 20_000) if disputed else (150_000, 130_000)
    buyer.ok(
        "POST",
        f"{contract_path}/revise",
        {"terms": {"currency": "USD", "scope": "The shop.", "milestones": milestones(*amounts)}},
    )
    seller.see(contract_path, lambda c: c["offer_version"] == 2)
    active = seller.ok("POST", f"{contract_path}/accept", {"version": 2})
    assert active["status"] == "active"
    m1, m2, *m3 = (m["milestone_id"] for m in active["milestones"])
    buyer.see(f"/projects/{project_id}", lambda p: p["status"] == "awarded")

    # Two milestones funded at once.
    funded = buyer.ok(
        "POST",
        f"{contract_path}/fund",
        {"milestone_ids": [m1, m2, *m3], "payment_method": "pm_card_visa"},
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
    settled = 0
    if disputed:
        assert grant_admin is not None
        settled = dispute_and_resolve(
            base, failures, grant_admin, buyer, seller, contract_id, m3[0]
        )
    # Milestone 2: submitted and left unanswered: the review period approves it.
    seller.ok("POST", f"{contract_path}/milestones/{m2}/submit", {"note": "Part 2"})
    done = buyer.see(contract_path, lambda c: c["status"] == "completed", timeout=150)
    assert [m["status"] for m in done["milestones"]] == ["paid", "paid"] + ["settled"] * len(m3)
    history = buyer.ok("GET", f"{contract_path}/history")["items"]
    automatic = [h["data"]["automatic"] for h in history if h["type"] == "MilestoneApproved"]
    assert automatic == [False, True]

    # The seller is paid out; the books show it.
    net = sum(net_of_fee(a) for a in amounts[:2]) + net_of_fee(settled)
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
        "refunded": sum(amounts[2:]) - settled,
    }


def dispute_and_resolve(
    base: str,
    failures: Counter | None,
    grant_admin: Callable[[str], None],
    buyer: Client,
    seller: Client,
    contract_id: str,
    milestone_id: str,
) -> int:
    """The third milestone is delivered, discussed in the work room and
    disputed; an administrator reads the case, work room included, and pays
    the seller half. Returns the seller's share."""
    contract_path = f"/contracts/{contract_id}"
    seller.ok("POST", f"{contract_path}/milestones/{milestone_id}/submit", {"note": "Part 3"})
    room = buyer.ok("POST", "/conversations", {"contract_id": contract_id})
    broken = buyer.upload(png(6, 6), "message", "broken.png")
    buyer.ok(
        "POST",
        f"/conversations/{room['conversation_id']}/messages",
        {"text": "Part 3 is broken on phones.", "file_ids": [broken["file_id"]]},
        status=201,
    )
    buyer.ok(
        "POST", f"{contract_path}/milestones/{milestone_id}/dispute", {"reason": "Broken on phones"}
    )
    admin = administrator(base, failures, grant_admin)
    admin.see(
        "/admin/disputes", lambda d: [i for i in d["items"] if i["contract_id"] == contract_id]
    )
    case = admin.see(
        f"/admin/disputes/{contract_id}",
        lambda c: [m for m in c["messages"] if m["text"] == "Part 3 is broken on phones."],
    )
    assert broken["file_id"] in {f["file_id"] for f in case["files"]}
    opens(
        admin, f"/api/v1/admin/disputes/{contract_id}/files/{broken['file_id']}/content", b"\x89PNG"
    )
    to_seller = 10_000
    admin.ok(
        "POST",
        f"{contract_path}/milestones/{milestone_id}/resolve",
        {"to_seller": to_seller, "note": "Works on desktops only; half of it."},
    )
    seller.see(
        contract_path,
        lambda c: (
            next(m for m in c["milestones"] if m["milestone_id"] == milestone_id)["status"]
            == "settled"
        ),
    )
    return to_seller
