"""Hostile input: oversized, malformed, mistyped, strange and malicious. Every
one gets a clear 4xx with a problem document, and nothing is stored; text that
is merely strange is stored and returned exactly."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.integration.test_contracts_api import Deal
from tests.integration.test_identity_api import assert_problem, png

pytestmark = pytest.mark.integration

NASTY = [
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "../../../../etc/passwd",
    "..\\..\\windows\\system32",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
]
STRANGE = [
    "Zürich café naïve",
    "שלום עולם مرحبا",  # right to left
    "e\u0301\u0301\u0301 combining",
    "zero\u200bwidth\u200djoiner",
    "👩‍👩‍👧‍👦 family 🏳️‍🌈",
    "\U0001d54f\U0001d560\U0001d565 math",
]


def event_count(deal: Deal) -> int:
    engine = sa.create_engine(deal.event_store_url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    engine.dispose()
    return n


def raw(deal: Deal, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return requests.request(method, deal.url(path), headers=headers, timeout=30, **kw)


def test_malformed_oversized_and_mistyped_requests_store_nothing(deal: Deal):
    buyer = deal.signup(["buyer"])
    b = buyer["access_token"]
    before = event_count(deal)
    json = {"Content-Type": "application/json"}
    cases = [
        (raw(deal, "POST", "/projects", b, data=b"{not json", headers=json), 400, "invalid_json"),
        (raw(deal, "POST", "/projects", b, data=b"[1, 2", headers=json), 400, "invalid_json"),
        (
            raw(
                deal,
                "POST",
                "/projects",
                b,
                data=b"title=x",
                headers={"Content-Type": "text/plain"},
            ),
            415,
            "unsupported_media_type",
        ),
        (
            raw(
                deal,
                "POST",
                "/projects",
                b,
                data=b'{"a": "' + b"x" * 1_100_000 + b'"}',
                headers=json,
            ),
            413,
            "request_entity_too_large",
        ),
        (raw(deal, "POST", "/projects", b, json=[1, 2, 3]), 422, "invalid_input"),
        (raw(deal, "POST", "/projects", b, json={"title": "a\u0000b"}), 422, "invalid_input"),
        (raw(deal, "GET", "/projects?limit=100000", b), 422, "invalid_input"),
        (raw(deal, "GET", "/projects?limit=-1", b), 422, "invalid_input"),
        (raw(deal, "GET", "/projects?cursor=%%%not-a-cursor", b), 422, "invalid_input"),
        (raw(deal, "GET", "/projects?budget_min=99999999999999999999999", b), 422, "invalid_input"),
        (raw(deal, "GET", "/files/..%2F..%2Fetc%2Fpasswd/content", b), 404, "not_found"),
        (raw(deal, "GET", "/contracts/' OR 1=1 --", b), 404, "not_found"),
        (raw(deal, "DELETE", "/projects", b), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert_problem(response, status, code)
    huge = deal.upload(b, b"\x89PNG" + b"\0" * 200_000, "photo", "big.png")
    assert_problem(huge, 413, "file_too_large")
    exe = deal.upload(b, b"MZ\x90\x00" + b"\0" * 512, "photo", "evil.png")
    assert_problem(exe, 415, "unsupported_file_type")
    traversal = deal.upload(b, png(), "attachment", "../../../etc/passwd")
    assert traversal.status_code == 201
    assert "/" not in traversal.json()["filename"] and ".." not in traversal.json()[
        "filename"
    ].split("/")
    assert event_count(deal) == before + 1  # only the one well-formed upload


@pytest.mark.parametrize("text", NASTY + STRANGE)
def test_strange_and_malicious_text_is_stored_and_returned_exactly(deal: Deal, text: str):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    title = f"{text} {uuid.uuid4().hex[:6]}"
    project = deal.project(b, title=title[:200], description=f"{text} " * 5, scope=text)
    seen = deal.visible(f"/projects/{project['project_id']}")
    assert seen["title"] == title[:200] and seen["scope"] == text
    found = deal.get("/projects", params={"q": text})
    assert found.status_code == 200, found.text  # search treats it as words, never as SQL
    proposal = deal.post(
        f"/projects/{project['project_id']}/proposals",
        deal.proposal_body(cover_letter=f"{text} " * 10),
        s,
    )
    assert proposal.status_code == 201, proposal.text
    conversation = deal.post("/conversations", {"proposal_id": proposal.json()["proposal_id"]}, b)
    path = f"/conversations/{conversation.json()['conversation_id']}/messages"
    assert deal.post(path, {"text": text}, s).status_code == 201
    messages = deal.visible(path, b, check=lambda page: page["items"])
    assert messages["items"][0]["text"] == text
