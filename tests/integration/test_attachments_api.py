"""Files follow what they are attached to, through the gateway's HTTP API against
real identity, projects, bidding and contracts services, RabbitMQ and PostgreSQL:
a project's brief is read by whoever reads the project, a proposal's attachments
and samples by the project's buyer, and nobody attaches what is not theirs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import wait_until
from tests.integration.test_identity_api import PDF, assert_problem, png
from tests.integration.test_projects_api import Market

pytestmark = pytest.mark.integration


def uploaded(market: Market, token: str, purpose: str, content: bytes = PDF) -> str:
    answer = market.upload(token, content, purpose, f"{purpose}.pdf")
    assert answer.status_code == 201, answer.text
    return str(answer.json()["file_id"])


def readable(market: Market, file_id: str, token: str | None) -> int:
    """The status of a download (waiting a moment for a grant to be recorded)."""

    def status() -> int | None:
        code = market.get(f"/files/{file_id}/content", token).status_code
        return code if code == 200 else None

    try:
        return int(wait_until(status, timeout=10, what="the file"))
    except AssertionError:
        return market.get(f"/files/{file_id}/content", token).status_code


def test_a_projects_brief_is_read_by_whoever_reads_the_project(market: Market):
    buyer, seller = market.signup(["buyer"]), market.signup(["seller"])
    brief = uploaded(market, buyer["access_token"], "attachment")
    assert market.get(f"/files/{brief}/content", seller["access_token"]).status_code == 403
    project = market.project(buyer["access_token"], attachment_ids=[brief])
    assert project["attachment_ids"] == [brief]
    assert readable(market, brief, seller["access_token"]) == 200
    assert readable(market, brief, None) == 200  # projects are public, so is their brief

    # Nobody attaches another's file, or a file uploaded for something else.
    theirs = uploaded(market, seller["access_token"], "attachment")
    photo = market.upload(buyer["access_token"], png(), "photo", "me.png").json()["file_id"]
    for wrong in (theirs, photo):
        refused = market.post(
            "/projects",
            {**project_body(), "attachment_ids": [wrong]},
            buyer["access_token"],
        )
        assert_problem(refused, 422, "invalid_input")["errors"]["attachment_ids"]
    edit = market.patch(
        f"/projects/{project['project_id']}", {"attachment_ids": [theirs]}, buyer["access_token"]
    )
    assert_problem(edit, 422, "invalid_input")


def project_body() -> dict[str, Any]:
    return {
        "title": "A second shop",
        "description": "Another online shop, for lamps this time, with payments.",
        "budget": {"type": "fixed", "amount": 150_000, "currency": "USD"},
        "deadline": "2099-01-01",
        "skills": ["Python"],
    }


def test_a_proposals_attachments_and_samples_are_the_sellers_and_the_buyer_reads_them(
    market: Market,
):
    buyer, seller, other = (
        market.signup(["buyer"]),
        market.signup(["seller"]),
        market.signup(["seller"]),
    )
    project = market.project(buyer["access_token"])
    project_id = project["project_id"]
    s = seller["access_token"]
    plan = uploaded(market, s, "attachment")
    sample_file = market.upload(s, png(3, 3), "portfolio", "shop.png").json()["file_id"]
    item = market.post(
        f"/users/{seller['user_id']}/portfolio",
        {"title": "A furniture shop", "file_ids": [sample_file]},
        s,
    )
    assert item.status_code == 201, item.text
    (item_id,) = [p["item_id"] for p in item.json()["seller"]["portfolio"]]
    linked = market.post(
        f"/users/{seller['user_id']}/portfolio",
        {"title": "A bakery's site", "links": ["https://bakery.example"]},
        s,
    ).json()
    (link_id,) = [p["item_id"] for p in linked["seller"]["portfolio"] if p["item_id"] != item_id]

    # Another seller's file, the buyer's, or another's portfolio item: refused.
    others_file = uploaded(market, other["access_token"], "attachment")
    others_item = market.post(
        f"/users/{other['user_id']}/portfolio", {"title": "Theirs"}, other["access_token"]
    ).json()["seller"]["portfolio"][0]["item_id"]
    path = f"/projects/{project_id}/proposals"
    for field, ids in (("attachment_ids", [others_file]), ("portfolio_item_ids", [others_item])):
        refused = market.post(path, market.proposal_body(**{field: ids}), s)
        assert field in assert_problem(refused, 422, "invalid_input")["errors"], refused.text

    sent = market.post(
        path,
        market.proposal_body(attachment_ids=[plan], portfolio_item_ids=[item_id, link_id]),
        s,
    )
    assert sent.status_code == 201, sent.text
    assert readable(market, plan, buyer["access_token"]) == 200
    assert market.get(f"/files/{plan}/content", other["access_token"]).status_code == 403
    assert market.get(f"/files/{plan}/content").status_code == 403

    listed = market.visible(path, buyer["access_token"], check=lambda b: b["items"])
    (proposal,) = listed["items"]
    assert proposal["samples"] == [
        {
            "item_id": item_id,
            "title": "A furniture shop",
            "type": "image/png",
            "url": f"/api/v1/files/{sample_file}/content",
        },
        {
            "item_id": link_id,
            "title": "A bakery's site",
            "type": "link",
            "url": "https://bakery.example",
        },
    ]
    assert (
        market.get(
            proposal["samples"][0]["url"].removeprefix("/api/v1"), buyer["access_token"]
        ).status_code
        == 200
    )

    # An edit that attaches another file grants the buyer that one too.
    more = uploaded(market, s, "attachment")
    edited = market.patch(
        f"/proposals/{sent.json()['proposal_id']}", {"attachment_ids": [plan, more]}, s
    )
    assert edited.status_code == 200, edited.text
    assert readable(market, more, buyer["access_token"]) == 200
