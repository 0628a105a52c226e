"""Bidding's rules as pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]
CONTENT_FIELDS = (
    "cover_letter",
    "price",
    "duration_days",
    "milestones",
    "portfolio_item_ids",
    "attachment_ids",
)
STALE_SLOT = timedelta(minutes=1)


def proposal_stream(proposal_id: str) -> str:
    return f"proposal-{proposal_id}"


def slot_stream(project_id: str, seller_id: str) -> str:
    return f"bidslot-{project_id}_{seller_id}"


def invitation_stream(project_id: str, seller_id: str) -> str:
    return f"invitation-{project_id}_{seller_id}"


@dataclass(frozen=True)
class ProjectFacts:
    """What bidding knows of a project, folded from the projects service's events."""

    project_id: str = ""
    buyer_id: str = ""
    status: str = ""
    version: int = 0


PROJECT_FACTS = (
    "ProjectPosted",
    "ProjectEdited",
    "ProjectClosed",
    "ProjectCancelled",
    "ProjectExpired",
    "ProjectAwarded",
)
"""The projects service's published events that ``evolve_project`` folds."""


def evolve_project(state: ProjectFacts, event: EventView) -> ProjectFacts:
    data = event.data
    match event.type:
        case "ProjectPosted":
            return ProjectFacts(data["project_id"], data["buyer_id"], "open", 1)
        case "ProjectEdited":
            return replace(state, version=data["version"])
        case "ProjectClosed" | "ProjectCancelled" | "ProjectExpired" | "ProjectAwarded":
            return replace(state, status=event.type.removeprefix("Project").lower())
    return state


@dataclass(frozen=True)
class Slot:
    proposal_id: str | None = None
    claimed_at: datetime | None = None


def evolve_slot(state: Slot, event: EventView) -> Slot:
    if event.type == "BidSlotClaimed":
        return Slot(event.data["proposal_id"], event.recorded_at)
    if event.type == "BidSlotReleased":
        return Slot()
    return state


@dataclass(frozen=True)
class Proposal:
    proposal_id: str = ""
    project_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    status: str = ""
    shortlisted: bool = False
    archived: bool = False
    project_version: int = 0
    content: dict[str, Any] = field(default_factory=dict)
    refused: frozenset[str] = frozenset()
    """Contracts this proposal refused to be hired for (see ``hire``)."""

    @property
    def exists(self) -> bool:
        return bool(self.proposal_id)


def evolve(state: Proposal, event: EventView) -> Proposal:
    data = event.data
    match event.type:
        case "ProposalSubmitted":
            return Proposal(
                data["proposal_id"],
                data["project_id"],
                data["buyer_id"],
                data["seller_id"],
                "submitted",
                project_version=data["project_version"],
                content={k: data[k] for k in CONTENT_FIELDS if k in data},
            )
        case "ProposalEdited":
            changes = {k: v for k, v in data.items() if k in CONTENT_FIELDS}
            return replace(
                state, content={**state.content, **changes}, project_version=data["project_version"]
            )
        case "ProposalWithdrawn":
            return replace(state, status="withdrawn")
        case "ProposalDeclined":
            return replace(state, status="declined")
        case "ProposalHired":
            return replace(state, status="hired")
        case "ProposalNotSelected":
            return replace(state, status="not_selected")
        case "ProposalHireRefused":
            return replace(state, refused=state.refused | {event.data["contract_id"]})
        case "ProposalShortlisted":
            return replace(state, shortlisted=True)
        case "ProposalUnshortlisted":
            return replace(state, shortlisted=False)
        case "ProposalArchived":
            return replace(state, archived=True)
    return state


PORTFOLIO_FACTS = ("PortfolioItemAdded", "PortfolioItemRemoved")
"""Identity's published events ``evolve_portfolio`` folds (a seller's items)."""


def evolve_portfolio(state: frozenset[str], event: EventView) -> frozenset[str]:
    """The ids of a seller's portfolio items."""
    if event.type == "PortfolioItemAdded":
        return state | {str(event.data["item_id"])}
    if event.type == "PortfolioItemRemoved":
        return state - {str(event.data["item_id"])}
    return state


def check_content(content: dict[str, Any]) -> dict[str, Any]:
    """Milestones, if suggested, must add up to a fixed price."""
    milestones = content.get("milestones") or []
    price = content.get("price")
    if milestones and price is not None:
        if price["type"] != "fixed":
            raise InvalidInput(
                "milestones go with a fixed price",
                {"fields": {"milestones": ["Only for fixed prices."]}},
            )
        total = sum(m["amount"] for m in milestones)
        if total != price["amount"]:
            raise InvalidInput(
                "the milestones must add up to the price",
                {
                    "fields": {
                        "milestones": [f"They add up to {total}, the price is {price['amount']}."]
                    }
                },
            )
    return content


def submit(
    project: ProjectFacts, slot: Slot, slot_holder: Proposal, seller_id: str, now: datetime
) -> list[EventSpec]:
    """May ``seller_id`` propose now? Returns the slot events (a release of a
    dead claim, if any); raises if not."""
    if not project.project_id:
        raise NotFound("no such project")
    if project.buyer_id == seller_id:
        raise Forbidden("you cannot propose on your own project")
    if project.status != "open":
        raise Conflict(
            f"the project is {project.status}",
            {"reason": "project_not_open", "state": project.status},
        )
    if slot.proposal_id is None:
        return []
    if slot_holder.exists and slot_holder.status != "withdrawn":
        raise Conflict(
            "you already have a proposal on this project",
            {"reason": "duplicate_proposal", "proposal_id": slot.proposal_id},
        )
    if (
        not slot_holder.exists
        and slot.claimed_at is not None
        and now - slot.claimed_at < STALE_SLOT
    ):
        raise Conflict("a proposal of yours is being submitted", {"reason": "duplicate_proposal"})
    return [("BidSlotReleased", {"proposal_id": slot.proposal_id})]


def _seller_open(state: Proposal, actor: str) -> None:
    if not state.exists:
        raise NotFound("no such proposal")
    if state.seller_id != actor:
        raise Forbidden("only the proposal's seller may do this")
    if state.status != "submitted":
        raise Conflict(
            f"the proposal is {state.status}", {"reason": "not_open", "state": state.status}
        )


def edit(
    state: Proposal, actor: str, changes: dict[str, Any], project: ProjectFacts
) -> list[EventSpec]:
    _seller_open(state, actor)
    if project.status != "open":
        raise Conflict(f"the project is {project.status}", {"reason": "project_not_open"})
    merged = check_content({**state.content, **changes})
    changed = {k: merged[k] for k in changes if state.content.get(k) != merged[k]}
    if not changed:
        return []
    return [("ProposalEdited", {"project_version": project.version, **changed})]


def withdraw(state: Proposal, actor: str, reason: str) -> list[EventSpec]:
    _seller_open(state, actor)
    return [("ProposalWithdrawn", {"reason": reason})]


def _buyer(state: Proposal, actor: str) -> None:
    if not state.exists:
        raise NotFound("no such proposal")
    if state.buyer_id != actor:
        raise Forbidden("only the project's buyer may do this")


def shortlist(state: Proposal, actor: str, on: bool) -> list[EventSpec]:
    _buyer(state, actor)
    if state.status != "submitted":
        raise Conflict(
            f"the proposal is {state.status}", {"reason": "not_open", "state": state.status}
        )
    if state.shortlisted == on:
        return []
    return [("ProposalShortlisted" if on else "ProposalUnshortlisted", {})]


def archive(state: Proposal, actor: str) -> list[EventSpec]:
    _buyer(state, actor)
    return [] if state.archived else [("ProposalArchived", {})]


def decline(state: Proposal, actor: str, reason: str) -> list[EventSpec]:
    _buyer(state, actor)
    if state.status != "submitted":
        raise Conflict(
            f"the proposal is {state.status}", {"reason": "not_open", "state": state.status}
        )
    return [("ProposalDeclined", {"reason": reason})]


def hire(state: Proposal, contract_id: str) -> list[EventSpec]:
    """A started contract hires its proposal. Contracts sends offers on what it
    learned of the proposal, which can lag: bidding, which owns the proposal,
    refuses to hire one the seller withdrew or the buyer declined meanwhile,
    and contracts then cancels the contract. Redeliveries record nothing more."""
    if not state.exists or state.status == "hired" or contract_id in state.refused:
        return []
    if state.status in ("withdrawn", "declined", "not_selected"):
        return [("ProposalHireRefused", {"contract_id": contract_id, "status": state.status})]
    return [("ProposalHired", {"contract_id": contract_id})]


def not_selected(state: Proposal, contract_id: str) -> list[EventSpec]:
    """A contract started on another proposal to the project: an open one reads
    "not selected" (once; a proposal decided otherwise already is left so). It
    is hired no more: an offer accepted on it later is refused (``hire``)."""
    if state.status != "submitted":
        return []
    return [("ProposalNotSelected", {"contract_id": contract_id})]


# -- invitations -------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """A buyer's invitation of a seller to one project: ``open`` until the
    seller accepts or declines it, or the project ends (``closed``)."""

    project_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    status: str = ""
    message: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.status)


def evolve_invitation(state: Invitation, event: EventView) -> Invitation:
    data = event.data
    match event.type:
        case "SellerInvited":
            return Invitation(
                data["project_id"], data["buyer_id"], data["seller_id"], "open", data["message"]
            )
        case "InvitationAccepted":
            return replace(state, status="accepted")
        case "InvitationDeclined":
            return replace(state, status="declined")
        case "InvitationClosed":
            return replace(state, status="closed")
    return state


@dataclass(frozen=True)
class UserFacts:
    """What bidding knows of a user, from identity's published events."""

    roles: frozenset[str] = frozenset()
    erased: bool = False

    @property
    def known(self) -> bool:
        return bool(self.roles) or self.erased


USER_FACTS = ("UserRegistered", "RoleAdded", "RoleRemoved")
"""Identity's published events ``evolve_user`` folds (with ``PersonalDataErased``)."""


def evolve_user(state: UserFacts, event: EventView) -> UserFacts:
    if event.type == "UserRegistered":
        return replace(state, roles=state.roles | frozenset(event.data["roles"]))
    if event.type == "RoleAdded":
        return replace(state, roles=state.roles | {event.data["role"]})
    if event.type == "RoleRemoved":
        return replace(state, roles=state.roles - {event.data["role"]})
    if event.type == "PersonalDataErased":
        return replace(state, erased=True)
    return state


ENDING_PROJECT = ("ProjectClosed", "ProjectCancelled", "ProjectExpired", "ProjectAwarded")
"""Projects' events after which no invitation to the project stays open."""


def invite(
    state: Invitation,
    project: ProjectFacts,
    actor: str,
    seller_id: str,
    seller: UserFacts,
    message: str,
) -> list[EventSpec]:
    """One open invitation per project and seller, only to a seller who is not
    the buyer, on an open project of the actor's."""
    if not project.project_id:
        raise NotFound("no such project")
    if project.buyer_id != actor:
        raise Forbidden("only the project's buyer may invite sellers")
    if project.status != "open":
        raise Conflict(f"the project is {project.status}", {"reason": "project_not_open"})
    if seller_id == actor or "seller" not in seller.roles or seller.erased:
        raise InvalidInput(
            "invite a seller (not yourself)",
            {"fields": {"seller_id": ["Not a seller's account."]}},
        )
    if state.status in ("open", "accepted", "declined"):
        raise Conflict(
            f"this seller's invitation to the project is {state.status} already",
            {"reason": f"invitation_{state.status}"},
        )
    invited = {
        "project_id": project.project_id,
        "buyer_id": actor,
        "seller_id": seller_id,
        "message": message,
    }
    return [("SellerInvited", invited)]


def _invitee(state: Invitation, actor: str) -> None:
    """Only the invited seller answers (anyone else: there is no such invitation)."""
    if not state.exists or state.seller_id != actor:
        raise NotFound("no such invitation")
    if state.status != "open":
        raise Conflict(
            f"the invitation is {state.status}", {"reason": "not_open", "state": state.status}
        )


def _parties(state: Invitation) -> dict[str, str]:
    return {
        "project_id": state.project_id,
        "buyer_id": state.buyer_id,
        "seller_id": state.seller_id,
    }


def accept_invitation(state: Invitation, actor: str, project: ProjectFacts) -> list[EventSpec]:
    """The seller takes up the invitation: messaging opens a conversation about
    it, so both can talk before any proposal. Refused once the project ended
    (its owner may not have closed the invitation yet)."""
    _invitee(state, actor)
    if project.status != "open":
        raise Conflict(f"the project is {project.status}", {"reason": "project_not_open"})
    return [("InvitationAccepted", _parties(state))]


def decline_invitation(state: Invitation, actor: str, reason: str) -> list[EventSpec]:
    _invitee(state, actor)
    return [("InvitationDeclined", {**_parties(state), "reason": reason})]


def close_invitation(state: Invitation, reason: str) -> list[EventSpec]:
    """The project ended: an open invitation closes (once)."""
    if state.status != "open":
        return []
    return [("InvitationClosed", {**_parties(state), "reason": reason})]
