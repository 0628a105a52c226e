"""Reviews' rules and the reputation formula, with no broker, database or clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reputation import domain as D
from services.reputation import formula as F
from services.reputation.domain import ContractEnd, Feedback
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent

T0 = datetime(2026, 11, 27, 9, tzinfo=UTC)
WINDOW = timedelta(days=14)
OUTCOME = {
    "outcome": "completed",
    "total_amount": 100_000,
    "total_paid": 100_000,
    "currency": "USD",
    "on_time": True,
}
END = ContractEnd("c1", "buyer", "seller", OUTCOME, T0)
OF_SELLER = {
    "rating": 5,
    "categories": {"quality": 5, "communication": 5, "expertise": 4, "deadlines": 5, "value": 5},
    "text": "great",
}
OF_BUYER = {
    "rating": 3,
    "categories": {"clarity": 3, "communication": 3, "payment_promptness": 4},
    "text": "ok",
}


def fold(state: Feedback, events: list[tuple[str, dict]]) -> Feedback:
    for event_type, data in events:
        recorded = RecordedEvent(
            uuid.uuid4(), event_type, 1, data, EventMetadata.root("x"), "feedback-c1", 0, 1, T0
        )
        state = D.evolve(state, DecodedEvent(recorded, data, 1))
    return state


def test_double_blind_reveal_when_both_reviewed():
    first = D.submit_review(Feedback(), END, "buyer", OF_SELLER, T0, WINDOW)
    assert [e for e, _ in first] == ["FeedbackWindowOpened", "ReviewSubmitted"]
    assert first[1][1]["reviewee_id"] == "seller" and first[1][1]["reviewee_role"] == "seller"
    state = fold(Feedback(), first)
    with pytest.raises(Conflict, match="already"):
        D.submit_review(state, END, "buyer", OF_SELLER, T0, WINDOW)
    second = D.submit_review(state, END, "seller", OF_BUYER, T0, WINDOW)
    assert [e for e, _ in second] == ["ReviewSubmitted", "ReviewsRevealed"]


def test_only_parties_after_the_end_within_the_window_with_the_right_categories():
    with pytest.raises(Forbidden):
        D.submit_review(Feedback(), END, "someone", OF_SELLER, T0, WINDOW)
    with pytest.raises(NotFound):
        D.submit_review(Feedback(), ContractEnd(), "buyer", OF_SELLER, T0, WINDOW)
    running = ContractEnd("c1", "buyer", "seller")
    with pytest.raises(Conflict, match="not ended"):
        D.submit_review(Feedback(), running, "buyer", OF_SELLER, T0, WINDOW)
    with pytest.raises(Conflict, match="closed"):
        D.submit_review(Feedback(), END, "buyer", OF_SELLER, T0 + WINDOW, WINDOW)
    with pytest.raises(InvalidInput):
        D.submit_review(Feedback(), END, "buyer", OF_BUYER, T0, WINDOW)


def test_a_lone_review_is_revealed_when_the_recorded_window_closes():
    state = fold(Feedback(), D.submit_review(Feedback(), END, "seller", OF_BUYER, T0, WINDOW))
    assert D.reveal_when_closed(state, T0 + WINDOW - timedelta(seconds=1)) == []
    assert D.reveal_when_closed(state, T0 + WINDOW)[0][0] == "ReviewsRevealed"
    opened = fold(Feedback(), D.open_window(Feedback(), END, WINDOW))
    assert D.reveal_when_closed(opened, T0 + 2 * WINDOW) == []  # nothing to reveal


def test_formula_bayesian_average_weights_value_and_recency():
    old = F.EndedContract("a", "b1", "completed", 1_000_000, True, T0)
    new = F.EndedContract("b", "b2", "completed", 100, True, T0 + timedelta(days=365))
    result = F.reputation([old, new], [F.Review("a", 1), F.Review("b", 5)])
    w_old = (1 + 4.0000043429) * 0.5  # log10(1 + 10,000) and one half-life
    w_new = 1 + 0.30103  # log10(2), no age
    expected = (2 * 3.5 + w_old * 1 + w_new * 5) / (2 + w_old + w_new)
    assert result["score"] == pytest.approx(round(expected, 2), abs=0.01)
    assert (result["reviews"], result["completion_rate"], result["on_time_rate"]) == (2, 100, 100)
    assert result["job_success"] == round(0.4 * 50 + 30 + 30)


def test_formula_rates_and_rehires():
    contracts = [
        F.EndedContract("a", "b1", "completed", 100, True, T0),
        F.EndedContract("b", "b1", "completed", 100, False, T0),
        F.EndedContract("c", "b2", "cancelled", 100, False, T0),
    ]
    result = F.reputation(contracts, [])
    assert result["score"] is None
    assert (result["completion_rate"], result["on_time_rate"], result["rehire_rate"]) == (
        67,
        50,
        50,
    )
    assert F.reputation([], [])["job_success"] is None


def test_a_contract_cancelled_before_anything_was_funded_is_no_work_to_review():
    unfunded = ContractEnd(
        "c2",
        "buyer",
        "seller",
        {**OUTCOME, "outcome": "cancelled", "total_paid": 0, "refund_milestone_ids": []},
        T0,
    )
    assert D.open_window(Feedback(), unfunded, WINDOW) == []
    with pytest.raises(Conflict) as caught:
        D.submit_review(Feedback(), unfunded, "buyer", OF_SELLER, T0, WINDOW)
    assert caught.value.details["reason"] == "nothing_to_review"
    refunded = replace(unfunded, outcome={**unfunded.outcome, "refund_milestone_ids": ["m1"]})
    paid = replace(unfunded, outcome={**unfunded.outcome, "total_paid": 5_000})
    for worked in (refunded, paid, END):
        assert D.open_window(Feedback(), worked, WINDOW), worked
