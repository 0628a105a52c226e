"""ReputationService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.reputation.service import ReputationService
from shared.errors import Conflict, Forbidden
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())
OF_SELLER = {"quality": 5, "communication": 4, "expertise": 5, "deadlines": 4, "value": 5}
OF_BUYER = {"clarity": 5, "communication": 5, "payment_promptness": 4}


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(ReputationService, tmp_path, {"REVIEW_WINDOW_DAYS": 14})


def completed_contract(h: ServiceHarness) -> tuple[str, dict[str, Any]]:
    """(contract id, the ContractCompleted message), as contracts' events tell
    it (the one place this test sets up another service's entity)."""
    contract_id = str(uuid.uuid4())
    parties = {"contract_id": contract_id, "buyer_id": BUYER, "seller_id": SELLER}
    terms = {
        "currency": "USD",
        "scope": "a landing page",
        "milestones": [
            {
                "milestone_id": str(uuid.uuid4()),
                "title": "the page",
                "amount": 200_000,
                "due_date": h.clock.today() + timedelta(days=20),
                "revision_limit": 2,
            }
        ],
    }
    offered = {
        **parties,
        "project_id": str(uuid.uuid4()),
        "proposal_id": str(uuid.uuid4()),
        "review_seconds": 86_400,
        "terms": terms,
    }
    outcome = {**parties, "currency": "USD", "total_amount": 200_000, "total_paid": 200_000}
    stream = f"contract-{contract_id}"
    h.append(
        stream,
        [("OfferSent", offered), ("ContractCompleted", {**outcome, "on_time": True})],
    )
    return contract_id, h.message(stream, "ContractCompleted")


def review(rating: int, categories: dict[str, int]) -> dict[str, Any]:
    return {"rating": rating, "categories": categories, "text": "Good to work with."}


def test_the_window_opens_once_however_often_the_end_is_delivered(h: ServiceHarness) -> None:
    contract_id, message = completed_contract(h)
    h.worker().on_contract_completed(message)
    h.worker().on_contract_completed(message)
    assert h.types(f"feedback-{contract_id}") == ["FeedbackWindowOpened"]


def test_reviews_are_revealed_when_both_parties_reviewed(h: ServiceHarness) -> None:
    contract_id, _ = completed_contract(h)
    first = h.worker(BUYER).submit_review(contract_id, review(5, OF_SELLER))
    assert first == {"contract_id": contract_id, "revealed": False}
    with pytest.raises(Conflict) as caught:
        h.worker(BUYER).submit_review(contract_id, review(4, OF_SELLER))
    assert caught.value.details["reason"] == "already_reviewed"
    with pytest.raises(Forbidden):
        h.worker(str(uuid.uuid4())).submit_review(contract_id, review(1, OF_SELLER))
    assert h.worker(SELLER).submit_review(contract_id, review(5, OF_BUYER))["revealed"] is True


def test_the_clock_closes_the_window(h: ServiceHarness) -> None:
    contract_id, message = completed_contract(h)
    h.worker().on_contract_completed(message)
    h.worker(BUYER).submit_review(contract_id, review(5, OF_SELLER))
    h.clock.advance(timedelta(days=14, seconds=1))
    with pytest.raises(Conflict) as caught:
        h.worker(SELLER).submit_review(contract_id, review(5, OF_BUYER))
    assert caught.value.details["reason"] == "window_closed"
    h.catch_up()
    assert h.worker().reveal_closed_windows() == 1
    assert h.types(f"feedback-{contract_id}")[-1] == "ReviewsRevealed"
