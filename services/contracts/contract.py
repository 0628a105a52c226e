"""A contract as its published events tell it: the state every event of a
contract folds into (``evolve``), and what follows from it alone.

Shared by the contracts service's rules (``domain``) and the view the gateway
keeps (``views``): contracts publishes every event of a contract, so the
gateway folds the same state from the published events and needs nothing of
the rules themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from services.contracts import hourly as hourly_rules
from services.contracts.hourly import Hourly
from shared.schemas import EventView

DEFAULT_REVIEW_DAYS = 14
FINISHED = ("paid", "settled", "removed")
OPEN_OFFER = ("offered", "changes_requested")
"""An offer's statuses while it waits for an answer (and can expire)."""
MONEY_HELD = ("funded", "submitted", "changes_requested")
"""Statuses in which escrow holds the milestone's money and nothing is decided."""


@dataclass(frozen=True)
class Milestone:
    milestone_id: str
    title: str
    amount: int
    due_date: date
    revision_limit: int
    description: str = ""
    acceptance_criteria: str = ""
    status: str = "pending"
    submissions: int = 0
    revisions_used: int = 0
    review_due_at: datetime | None = None
    delivered_at: datetime | None = None
    paid_amount: int = 0


@dataclass(frozen=True)
class Contract:
    contract_id: str = ""
    project_id: str = ""
    proposal_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    status: str = ""
    """offered, changes_requested, declined, withdrawn, expired (offers);
    active, completed, cancelled (contracts)."""
    offer_version: int = 0
    currency: str = ""
    review_seconds: int = DEFAULT_REVIEW_DAYS * 86_400
    terms: dict[str, Any] = field(default_factory=dict)
    milestones: dict[str, Milestone] = field(default_factory=dict)
    pending_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancellation: dict[str, Any] | None = None
    hourly: Hourly | None = None
    """An hourly contract's terms, time and invoices (None: fixed-price)."""
    reminders: frozenset[str] = frozenset()
    """The reminders recorded (``reminder_key``): each is recorded once."""
    offer_expires_at: datetime | None = None
    """When the offer's current version lapses unanswered (None: never)."""

    @property
    def exists(self) -> bool:
        return bool(self.contract_id)


def _hourly_from(terms: dict[str, Any]) -> Hourly | None:
    hourly = terms.get("hourly")
    return None if not hourly else hourly_rules.from_terms(hourly)


def _milestone_from(m: dict[str, Any]) -> Milestone:
    return Milestone(
        m["milestone_id"],
        m["title"],
        m["amount"],
        m["due_date"],
        m.get("revision_limit", 2),
        m.get("description", ""),
        m.get("acceptance_criteria", ""),
    )


def _milestones(terms: dict[str, Any]) -> dict[str, Milestone]:
    return {m["milestone_id"]: _milestone_from(m) for m in terms["milestones"]}


def _with_milestone(state: Contract, milestone_id: str, **changes: Any) -> Contract:
    milestone = replace(state.milestones[milestone_id], **changes)
    return replace(state, milestones={**state.milestones, milestone_id: milestone})


def _apply_change(state: Contract, change: dict[str, Any]) -> Contract:
    if change["action"] == "remove":
        return _with_milestone(state, change["milestone_id"], status="removed")
    fresh = _milestone_from(change["milestone"])
    return replace(state, milestones={**state.milestones, fresh.milestone_id: fresh})


def evolve(state: Contract, event: EventView) -> Contract:
    data, at = event.data, event.recorded_at
    mid = data.get("milestone_id", "")
    match event.type:
        case "OfferSent":
            return Contract(
                data["contract_id"],
                data["project_id"],
                data["proposal_id"],
                data["buyer_id"],
                data["seller_id"],
                "offered",
                1,
                data["terms"]["currency"],
                data["review_seconds"],
                data["terms"],
                _milestones(data["terms"]),
                hourly=_hourly_from(data["terms"]),
                offer_expires_at=data.get("expires_at"),
            )
        case "OfferChangesRequested":
            return replace(state, status="changes_requested")
        case "OfferRevised":
            return replace(
                state,
                status="offered",
                offer_version=data["version"],
                terms=data["terms"],
                milestones=_milestones(data["terms"]),
                currency=data["terms"]["currency"],
                hourly=_hourly_from(data["terms"]),
                offer_expires_at=data.get("expires_at"),
            )
        case "OfferDeclined":
            return replace(state, status="declined")
        case "OfferWithdrawn":
            return replace(state, status="withdrawn")
        case "OfferExpired":
            return replace(state, status="expired")
        case "ContractStarted":
            return replace(state, status="active")
        case "MilestoneFunded":
            return _with_milestone(state, mid, status="funded")
        case "WorkSubmitted":
            m = state.milestones[mid]
            return _with_milestone(
                state,
                mid,
                status="submitted",
                submissions=data["submission"],
                review_due_at=data["review_due_at"],
                delivered_at=at,
            )
        case "ChangesRequested":
            m = state.milestones[mid]
            return _with_milestone(
                state, mid, status="changes_requested", revisions_used=m.revisions_used + 1
            )
        case "MilestoneApproved":
            return _with_milestone(state, mid, status="approved")
        case "MilestonePaid":
            return _with_milestone(state, mid, status="paid", paid_amount=data["amount"])
        case "MilestoneDisputed":
            return _with_milestone(state, mid, status="disputed")
        case "DisputeResolved":
            return _with_milestone(state, mid, status="resolved")
        case "MilestoneSettled":
            return _with_milestone(state, mid, status="settled", paid_amount=data["to_seller"])
        case "MilestoneChangeProposed":
            changes = {**state.pending_changes, data["change_id"]: data}
            return replace(state, pending_changes=changes)
        case "MilestoneChangeAccepted":
            changes = {k: v for k, v in state.pending_changes.items() if k != data["change_id"]}
            return replace(_apply_change(state, data["change"]), pending_changes=changes)
        case "MilestoneChangeRejected":
            changes = {k: v for k, v in state.pending_changes.items() if k != data["change_id"]}
            return replace(state, pending_changes=changes)
        case "CancellationProposed":
            return replace(state, cancellation=data)
        case "CancellationRejected":
            return replace(state, cancellation=None)
        case "ContractCompleted":
            return replace(state, status="completed")
        case "ContractCancelled":
            return replace(state, status="cancelled", cancellation=None)
        case "MilestoneDueSoon" | "MilestoneOverdue" | "ApprovalDueSoon":
            key = reminder_key(event.type, mid, data.get("due_date") or data.get("submission"))
            return replace(state, reminders=state.reminders | {key})
        case _ if event.type in hourly_rules.HOURLY_EVENTS and state.hourly is not None:
            return replace(state, hourly=hourly_rules.evolve(state.hourly, event.type, data))
    return state


REMINDERS = ("MilestoneDueSoon", "MilestoneOverdue", "ApprovalDueSoon")


def reminder_key(reminder: str, milestone_id: str, of: object) -> str:
    """A reminder's identity: the milestone and the due date (a moved due date
    may remind again) or the submission number (each submission its own)."""
    return f"{reminder}:{milestone_id}:{of}"


def overdue_milestones(state: Contract, today: date) -> list[str]:
    """Past their due date with no work delivered for review."""
    if state.status != "active":
        return []
    return [
        m.milestone_id
        for m in state.milestones.values()
        if m.due_date < today and m.status in ("pending", "funded", "changes_requested")
    ]
