"""A contract's rules, from the first offer to completion, as pure functions.

One stream per contract, ``contract-<id>``. It begins as an offer: the buyer
sends terms, the seller accepts, declines or asks for changes, and every
revision is a new offer version. Accepting starts the contract. Each milestone
then goes pending -> funded -> submitted -> (changes requested -> submitted)*
-> approved -> paid, or is removed by mutual agreement.

Auto-approval is decided from the log alone: a submission's review deadline
is its event's recorded time plus the contract's review period, so any
process, after any restart or replay, finds the same milestones due.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import DecodedEvent

EventSpec = tuple[str, dict[str, Any]]
DEFAULT_REVIEW_DAYS = 14


@dataclass(frozen=True)
class Milestone:
    milestone_id: str
    title: str
    amount: int
    due_date: date
    revision_limit: int
    status: str = "pending"
    submissions: int = 0
    revisions_used: int = 0
    submitted_at: datetime | None = None
    approved_at: datetime | None = None


@dataclass(frozen=True)
class Contract:
    contract_id: str = ""
    project_id: str = ""
    proposal_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    status: str = ""  # offered, changes_requested, declined, active, completed, cancelled
    offer_version: int = 0
    currency: str = ""
    review_days: int = DEFAULT_REVIEW_DAYS
    terms: dict[str, Any] = field(default_factory=dict)
    milestones: dict[str, Milestone] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return bool(self.contract_id)


def _milestones(terms: dict[str, Any]) -> dict[str, Milestone]:
    return {
        m["milestone_id"]: Milestone(
            m["milestone_id"], m["title"], m["amount"], m["due_date"], m.get("revision_limit", 2)
        )
        for m in terms["milestones"]
    }


def _with_milestone(state: Contract, milestone_id: str, **changes: Any) -> Contract:
    milestone = replace(state.milestones[milestone_id], **changes)
    return replace(state, milestones={**state.milestones, milestone_id: milestone})


def evolve(state: Contract, event: DecodedEvent) -> Contract:
    data, at = event.data, event.recorded.recorded_at
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
                data.get("review_days", DEFAULT_REVIEW_DAYS),
                data["terms"],
                _milestones(data["terms"]),
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
            )
        case "OfferDeclined":
            return replace(state, status="declined")
        case "ContractStarted":
            return replace(state, status="active")
        case "MilestoneFunded":
            return _with_milestone(state, data["milestone_id"], status="funded")
        case "WorkSubmitted":
            m = state.milestones[data["milestone_id"]]
            return _with_milestone(
                state,
                m.milestone_id,
                status="submitted",
                submissions=m.submissions + 1,
                submitted_at=at,
            )
        case "ChangesRequested":
            m = state.milestones[data["milestone_id"]]
            return _with_milestone(
                state,
                m.milestone_id,
                status="changes_requested",
                revisions_used=m.revisions_used + 1,
            )
        case "MilestoneApproved":
            return _with_milestone(state, data["milestone_id"], status="approved", approved_at=at)
        case "MilestonePaid":
            return _with_milestone(state, data["milestone_id"], status="paid")
        case "MilestoneRemoved":
            return _with_milestone(state, data["milestone_id"], status="removed")
        case "ContractCompleted":
            return replace(state, status="completed")
        case "ContractCancelled":
            return replace(state, status="cancelled")
    return state


# -- offers ------------------------------------------------------------------------


def check_terms(terms: dict[str, Any], today: date) -> dict[str, Any]:
    """At least one milestone, each with a positive amount, a future due date
    and a revision limit of 0-10; milestone ids unique."""
    milestones = terms.get("milestones") or []
    if not milestones:
        raise InvalidInput(
            "an offer needs at least one milestone", {"fields": {"milestones": ["Add one."]}}
        )
    ids = [m["milestone_id"] for m in milestones]
    if len(set(ids)) != len(ids):
        raise InvalidInput(
            "milestone ids must be unique", {"fields": {"milestones": ["Duplicate id."]}}
        )
    for m in milestones:
        if m["amount"] <= 0 or m["due_date"] <= today or not 0 <= m.get("revision_limit", 2) <= 10:
            raise InvalidInput(
                f"milestone {m['title']!r} needs an amount above zero, a future due date "
                "and a revision limit between 0 and 10",
                {"fields": {"milestones": [m["milestone_id"]]}},
            )
    return terms


def send_offer(
    state: Contract,
    contract_id: str,
    proposal: dict[str, Any],
    actor: str,
    terms: dict[str, Any],
    review_days: int,
    today: date,
) -> list[EventSpec]:
    """``proposal``: the proposal offered on (its project, buyer and seller)."""
    if state.exists:
        raise Conflict("this offer exists already")
    if proposal["buyer_id"] != actor:
        raise Forbidden("only the project's buyer may send an offer")
    if proposal["status"] != "submitted":
        raise Conflict(f"the proposal is {proposal['status']}", {"reason": "proposal_not_open"})
    return [
        (
            "OfferSent",
            {
                "contract_id": contract_id,
                "project_id": proposal["project_id"],
                "proposal_id": proposal["proposal_id"],
                "buyer_id": proposal["buyer_id"],
                "seller_id": proposal["seller_id"],
                "review_days": review_days,
                "terms": check_terms(terms, today),
            },
        )
    ]


def _require(state: Contract, actor: str, role: str, statuses: tuple[str, ...]) -> None:
    if not state.exists:
        raise NotFound("no such contract")
    party = state.buyer_id if role == "buyer" else state.seller_id
    if actor != party:
        raise Forbidden(f"only the contract's {role} may do this")
    if state.status not in statuses:
        raise Conflict(
            f"the contract is {state.status}", {"reason": "wrong_state", "state": state.status}
        )


def request_offer_changes(state: Contract, actor: str, message: str) -> list[EventSpec]:
    _require(state, actor, "seller", ("offered",))
    return [("OfferChangesRequested", {"version": state.offer_version, "message": message})]


def revise_offer(
    state: Contract, actor: str, terms: dict[str, Any], today: date
) -> list[EventSpec]:
    _require(state, actor, "buyer", ("offered", "changes_requested"))
    return [
        ("OfferRevised", {"version": state.offer_version + 1, "terms": check_terms(terms, today)})
    ]


def decline_offer(state: Contract, actor: str, reason: str) -> list[EventSpec]:
    _require(state, actor, "seller", ("offered", "changes_requested"))
    return [("OfferDeclined", {"version": state.offer_version, "reason": reason})]


def accept_offer(state: Contract, actor: str, version: int) -> list[EventSpec]:
    """The seller accepts the version they saw; a newer one must be read first."""
    _require(state, actor, "seller", ("offered",))
    if version != state.offer_version:
        raise Conflict(
            "the offer changed since you read it",
            {"reason": "stale_offer", "current_version": state.offer_version},
        )
    return [
        (
            "ContractStarted",
            {
                "contract_id": state.contract_id,
                "project_id": state.project_id,
                "proposal_id": state.proposal_id,
                "buyer_id": state.buyer_id,
                "seller_id": state.seller_id,
                "offer_version": version,
            },
        )
    ]


# -- milestones --------------------------------------------------------------------


def _milestone(state: Contract, milestone_id: str) -> Milestone:
    if milestone_id not in state.milestones:
        raise NotFound("no such milestone")
    return state.milestones[milestone_id]


def _in(m: Milestone, *statuses: str) -> None:
    if m.status not in statuses:
        raise Conflict(f"the milestone is {m.status}", {"reason": "wrong_state", "state": m.status})


def mark_funded(state: Contract, milestone_id: str) -> list[EventSpec]:
    """Escrow held the money. Recorded once: a redelivered notice changes nothing."""
    m = _milestone(state, milestone_id)
    return [("MilestoneFunded", {"milestone_id": milestone_id})] if m.status == "pending" else []


def submit_work(
    state: Contract, actor: str, milestone_id: str, note: str, file_ids: list[str]
) -> list[EventSpec]:
    _require(state, actor, "seller", ("active",))
    m = _milestone(state, milestone_id)
    _in(m, "funded", "changes_requested")
    return [
        (
            "WorkSubmitted",
            {
                "milestone_id": milestone_id,
                "submission": m.submissions + 1,
                "note": note,
                "file_ids": file_ids,
            },
        )
    ]


def request_changes(state: Contract, actor: str, milestone_id: str, reason: str) -> list[EventSpec]:
    _require(state, actor, "buyer", ("active",))
    m = _milestone(state, milestone_id)
    _in(m, "submitted")
    if not reason.strip():
        raise InvalidInput("say what should change", {"fields": {"reason": ["Required."]}})
    if m.revisions_used >= m.revision_limit:
        raise Conflict(
            "the milestone's revision limit is used up: approve it or open a dispute",
            {"reason": "revision_limit", "limit": m.revision_limit},
        )
    return [
        (
            "ChangesRequested",
            {"milestone_id": milestone_id, "revision": m.revisions_used + 1, "reason": reason},
        )
    ]


def approve(state: Contract, actor: str, milestone_id: str) -> list[EventSpec]:
    _require(state, actor, "buyer", ("active",))
    _in(_milestone(state, milestone_id), "submitted")
    return [("MilestoneApproved", {"milestone_id": milestone_id, "automatic": False})]


def review_deadline(state: Contract, milestone: Milestone) -> datetime | None:
    if milestone.status != "submitted" or milestone.submitted_at is None:
        return None
    return milestone.submitted_at + timedelta(days=state.review_days)


def auto_approvals(state: Contract, now: datetime) -> list[EventSpec]:
    """Submitted milestones whose review period passed without an answer."""
    if state.status != "active":
        return []
    due = []
    for m in state.milestones.values():
        deadline = review_deadline(state, m)
        if deadline is not None and deadline <= now:
            due.append(
                (
                    "MilestoneApproved",
                    {"milestone_id": m.milestone_id, "automatic": True, "deadline": deadline},
                )
            )
    return due


def mark_paid(state: Contract, milestone_id: str) -> list[EventSpec]:
    m = _milestone(state, milestone_id)
    if m.status == "paid":
        return []
    _in(m, "approved")
    return [
        ("MilestonePaid", {"milestone_id": milestone_id}),
        *completion(state, {milestone_id: replace(m, status="paid")}),
    ]


def completion(state: Contract, changed: dict[str, Milestone]) -> list[EventSpec]:
    """The contract ends as completed once every milestone is paid or removed."""
    milestones = {**state.milestones, **changed}
    if state.status != "active" or not all(
        m.status in ("paid", "removed") for m in milestones.values()
    ):
        return []
    paid = [m for m in milestones.values() if m.status == "paid"]
    late = [m.milestone_id for m in paid if m.approved_at and m.approved_at.date() > m.due_date]
    return [
        (
            "ContractCompleted",
            {
                "total_paid": sum(m.amount for m in paid),
                "currency": state.currency,
                "on_time": not late,
                "late_milestones": late,
            },
        )
    ]


def late_milestones(state: Contract, today: date) -> list[str]:
    """Milestones past their due date and not yet approved, paid or removed."""
    return [
        m.milestone_id
        for m in state.milestones.values()
        if m.due_date < today and m.status not in ("approved", "paid", "removed")
    ]


# -- what contracts learns from other services' events -----------------------------


def evolve_proposal(state: dict[str, Any], event: DecodedEvent) -> dict[str, Any]:
    """A proposal as bidding's events tell it (never bidding's tables)."""
    data = event.data
    match event.type:
        case "ProposalSubmitted":
            keys = ("proposal_id", "project_id", "buyer_id", "seller_id")
            return {**{k: data[k] for k in keys}, "status": "submitted"}
        case "ProposalWithdrawn":
            return {**state, "status": "withdrawn"}
        case "ProposalDeclined":
            return {**state, "status": "declined"}
        case "ProposalHired":
            return {**state, "status": "hired"}
    return state


def evolve_project_status(state: str, event: DecodedEvent) -> str:
    """A project's status as projects' events tell it."""
    match event.type:
        case "ProjectPosted":
            return "open"
        case "ProjectClosed" | "ProjectCancelled" | "ProjectExpired" | "ProjectAwarded":
            return event.type.removeprefix("Project").lower()
    return state
