"""Reviews' rules, as pure functions over one contract's ``feedback-`` stream.

Once per party per contract, only by its parties, only after it ended and
before its window closes; double-blind: revealed when both have reviewed or
when the window closes (a timer records that, from the deadline recorded when
the window opened, so a replay reveals the same reviews).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.reputation.events import BUYER_CATEGORIES, SELLER_CATEGORIES
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Feedback:
    contract_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    closes_at: datetime | None = None
    reviewers: frozenset[str] = frozenset()
    revealed: bool = False

    @property
    def open(self) -> bool:
        return bool(self.contract_id)


def evolve(state: Feedback, event: EventView) -> Feedback:
    d = event.data
    match event.type:
        case "FeedbackWindowOpened":
            return Feedback(d["contract_id"], d["buyer_id"], d["seller_id"], d["closes_at"])
        case "ReviewSubmitted":
            return replace(state, reviewers=state.reviewers | {d["reviewer_id"]})
        case "ReviewsRevealed":
            return replace(state, revealed=True)
    return state


# -- the contract's end, as contracts' events tell it ------------------------------------


@dataclass(frozen=True)
class ContractEnd:
    contract_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)
    ended_at: datetime | None = None


def evolve_contract(state: ContractEnd, event: EventView) -> ContractEnd:
    d = event.data
    if event.type == "OfferSent":
        return ContractEnd(d["contract_id"], d["buyer_id"], d["seller_id"])
    if event.type in ("ContractCompleted", "ContractCancelled"):
        outcome = {**d, "outcome": event.type.removeprefix("Contract").lower()}
        parties = ContractEnd(d["contract_id"], d["buyer_id"], d["seller_id"])
        return replace(parties, outcome=outcome, ended_at=event.recorded_at)
    return state


def real_work(outcome: dict[str, Any]) -> bool:
    """Whether an ended contract was work to review and to count in a
    reputation: completed, or cancelled after money moved (something was paid
    out or is refunded). One cancelled before anything was funded opens no
    review window, so it is in no rate either (the formula counts windows)."""
    if outcome.get("outcome") == "completed":
        return True
    return int(outcome.get("total_paid") or 0) > 0 or bool(outcome.get("refund_milestone_ids"))


def open_window(state: Feedback, end: ContractEnd, window: timedelta) -> list[EventSpec]:
    if state.open or end.ended_at is None or not real_work(end.outcome):
        return []
    o = end.outcome
    return [
        (
            "FeedbackWindowOpened",
            {
                "contract_id": end.contract_id,
                "buyer_id": end.buyer_id,
                "seller_id": end.seller_id,
                "outcome": o["outcome"],
                "total_amount": o["total_amount"],
                "total_paid": o["total_paid"],
                "currency": o["currency"],
                "on_time": o["on_time"] and o["outcome"] == "completed",
                "ended_at": end.ended_at,
                "closes_at": end.ended_at + window,
            },
        )
    ]


def submit_review(
    state: Feedback,
    end: ContractEnd,
    actor: str,
    review: dict[str, Any],
    now: datetime,
    window: timedelta,
) -> list[EventSpec]:
    """``review``: rating, categories, text. Opens the window first if the
    contract's end has not reached this service yet."""
    if not end.contract_id:
        raise NotFound("no such contract")
    if actor not in (end.buyer_id, end.seller_id):
        raise Forbidden("only the contract's parties review each other")
    if end.ended_at is not None and not real_work(end.outcome) and not state.open:
        raise Conflict(
            "the contract was cancelled before anything was funded: there is no work to review",
            {"reason": "nothing_to_review"},
        )
    opening = open_window(state, end, window)
    if opening:
        d = opening[0][1]
        state = Feedback(d["contract_id"], d["buyer_id"], d["seller_id"], d["closes_at"])
    if not state.open:
        raise Conflict("the contract has not ended yet", {"reason": "contract_not_ended"})
    if actor in state.reviewers:
        raise Conflict("you have reviewed this contract already", {"reason": "already_reviewed"})
    assert state.closes_at is not None
    if now >= state.closes_at:
        raise Conflict("the review window has closed", {"reason": "window_closed"})
    role = "seller" if actor == state.buyer_id else "buyer"
    expected = SELLER_CATEGORIES if role == "seller" else BUYER_CATEGORIES
    categories = review["categories"]
    if set(categories) != set(expected) or not all(1 <= v <= 5 for v in categories.values()):
        raise InvalidInput(
            f"rate the {role} on {', '.join(expected)}, each from 1 to 5",
            {"fields": {"categories": [f"Exactly: {', '.join(expected)}."]}},
        )
    events = [
        *opening,
        (
            "ReviewSubmitted",
            {
                "contract_id": state.contract_id,
                "reviewer_id": actor,
                "reviewee_id": state.seller_id if role == "seller" else state.buyer_id,
                "reviewee_role": role,
                "rating": review["rating"],
                "categories": dict(sorted(categories.items())),
                "text": review["text"],
            },
        ),
    ]
    if len(state.reviewers | {actor}) == 2:
        events.append(
            ("ReviewsRevealed", {"contract_id": state.contract_id, "reason": "both_reviewed"})
        )
    return events


def reveal_when_closed(state: Feedback, now: datetime) -> list[EventSpec]:
    if not state.open or state.revealed or not state.reviewers:
        return []
    assert state.closes_at is not None
    if now < state.closes_at:
        return []
    return [("ReviewsRevealed", {"contract_id": state.contract_id, "reason": "window_closed"})]
