"""Fifty identical requests at once: exactly one succeeds, the others get a 409."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.test_contracts_api import Deal
from tests.integration.test_messaging_reputation_api import SELLER_REVIEW, completed_contract

pytestmark = pytest.mark.integration

N = 50


def at_once(send: Any) -> Counter:
    with ThreadPoolExecutor(N) as pool:
        return Counter(pool.map(lambda _: send().status_code, range(N)))


def test_fifty_accept_fund_and_review_races_have_one_winner(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    _, offer = deal.offer(buyer, seller, 70_000)
    cid = offer["contract_id"]

    accepted = at_once(lambda: deal.post(f"/contracts/{cid}/accept", {"version": 1}, s))
    assert accepted == {200: 1, 409: N - 1}, accepted
    contract = deal.visible(f"/contracts/{cid}", b, check=lambda c: c["status"] == "active")
    m1 = contract["milestones"][0]["milestone_id"]

    funded = at_once(lambda: deal.fund(b, cid, m1))
    assert funded == {201: 1, 409: N - 1}, funded
    charges = [e for e in deal.store.read_stream(f"escrow-{cid}") if e.type == "EscrowFunded"]
    assert len(charges) == 1

    other_buyer, other_seller = deal.signup(["buyer"]), deal.signup(["seller"])
    ended = completed_contract(deal, other_buyer, other_seller)
    reviewed = at_once(
        lambda: deal.post(f"/contracts/{ended}/reviews", SELLER_REVIEW, other_buyer["access_token"])
    )
    assert reviewed == {201: 1, 409: N - 1}, reviewed
    reviews = [
        e for e in deal.store.read_stream(f"feedback-{ended}") if e.type == "ReviewSubmitted"
    ]
    assert len(reviews) == 1
