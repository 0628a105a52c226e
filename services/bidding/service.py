"""The bidding service: proposals, shortlists and invitations."""

from __future__ import annotations

from typing import Any

from services.bidding import api, domain
from services.bidding.domain import ProjectFacts, Proposal, Slot
from services.bidding.readmodel import (
    OpenInvitations,
    OpenProposals,
    open_invitations,
    open_proposals,
)
from services.bidding.readmodel import metadata as readmodel_metadata
from shared.attachments import FILE_FACTS, check_own_files, check_samples
from shared.consumer import decode_message, event_handler, event_handlers, learns
from shared.database import ReadModelDatabase
from shared.erasure import forget_person
from shared.errors import Conflict, StaleState
from shared.eventlog import Aggregate, EventSpec
from shared.facts import LearnedFacts
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)

PROPOSAL = Aggregate(
    "proposal", domain.proposal_stream, domain.evolve, Proposal, lambda p: p.exists
)
SLOT = Aggregate("bid slot", domain.slot_stream, domain.evolve_slot, Slot, checks_id=False)
"""Keyed by (project id, seller id): one live proposal per seller and project."""
INVITATION = Aggregate(
    "invitation",
    domain.invitation_stream,
    domain.evolve_invitation,
    domain.Invitation,
    lambda i: i.exists,
)
"""Keyed by (project id, seller id): one invitation per seller and project."""


def invitation_view(state: domain.Invitation) -> dict[str, Any]:
    return {
        "project_id": state.project_id,
        "buyer_id": state.buyer_id,
        "seller_id": state.seller_id,
        "message": state.message,
        "status": state.status,
    }


def proposal_view(state: Proposal) -> dict[str, Any]:
    PROPOSAL.require(state)
    return {
        "proposal_id": state.proposal_id,
        "project_id": state.project_id,
        "buyer_id": state.buyer_id,
        "seller_id": state.seller_id,
        "status": state.status,
        "shortlisted": state.shortlisted,
        "archived": state.archived,
        "project_version": state.project_version,
        **state.content,
    }


class BiddingService(MarketplaceService):
    name = "bidding"
    facts = LearnedFacts()
    db = ReadModelDatabase(readmodel_metadata)
    # Which invitations are open, to close them when their project ends.
    invitations = ProjectionWorker(OpenInvitations())
    # Which proposals are open, to tell them when another is hired.
    open_proposals = ProjectionWorker(OpenProposals())

    @learns("projects", *domain.PROJECT_FACTS)
    def learn_project(self, payloads: list[dict[str, Any]]) -> None:
        """What bidding needs of a project, kept from projects' published events."""
        self.facts.learn_all(payloads)

    @learns("identity", *FILE_FACTS, *domain.PORTFOLIO_FACTS, *domain.USER_FACTS)
    def learn_files(self, payloads: list[dict[str, Any]]) -> None:
        """Whose files and portfolio items a proposal may attach and show."""
        self.facts.learn_all(payloads)

    def _check_attached(self, seller: str, data: dict[str, Any]) -> None:
        """Attachments are the seller's own files; samples their own portfolio items."""
        check_own_files(
            self.facts, seller, data.get("attachment_ids") or [], "proposal", "attachment_ids"
        )
        samples = [str(i) for i in data.get("portfolio_item_ids") or []]
        if samples:
            portfolio = self.facts.await_fold(
                "identity",
                seller,
                domain.evolve_portfolio,
                frozenset(),
                lambda s: set(samples) <= s,
            )
            check_samples(samples, portfolio)

    def _project(self, project_id: str) -> ProjectFacts:
        """The project as projects' published events told it (bidding reads
        neither projects' streams nor its tables)."""
        return self.facts.require(
            "projects",
            known_id(project_id, "project"),
            domain.evolve_project,
            ProjectFacts(),
            lambda p: bool(p.project_id),
            "project",
        )

    @rpc
    def submit_proposal(self, project_id: str, content: dict[str, Any]) -> dict[str, Any]:
        data = domain.check_content(json_ready(load(api.ProposalRequest(), content)))
        seller, now = self.context.actor_id, self.clock.now()
        project = self._project(project_id)
        self._check_attached(seller, data)
        proposal_id = self.event_log.new_id("proposal")

        def claim(slot: Slot) -> list[EventSpec]:
            holder = (
                self.event_log.get(PROPOSAL, slot.proposal_id) if slot.proposal_id else Proposal()
            )
            events = domain.submit(project, slot, holder, seller, now)
            return [*events, ("BidSlotClaimed", {"proposal_id": proposal_id})]

        try:
            self.event_log.run(SLOT, (project_id, seller), claim, attempts=1)
        except StaleState:
            raise Conflict(
                "you already have a proposal on this project", {"reason": "duplicate_proposal"}
            ) from None
        submitted = {
            "proposal_id": proposal_id,
            "project_id": project_id,
            "buyer_id": project.buyer_id,
            "seller_id": seller,
            "project_version": project.version,
            **data,
        }
        state = self.event_log.create(PROPOSAL, proposal_id, [("ProposalSubmitted", submitted)])
        log.info("proposal submitted", proposal_id=proposal_id, project_id=project_id)
        return proposal_view(state)

    @rpc
    def edit_proposal(self, proposal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = json_ready(load(api.ProposalEditRequest(), changes))
        actor = self.context.actor_id
        current = self.event_log.get(PROPOSAL, proposal_id)
        project = self._project(current.project_id) if current.exists else ProjectFacts()
        if current.exists and current.seller_id == actor:
            self._check_attached(actor, wanted)
        state = self.event_log.run(
            PROPOSAL, proposal_id, lambda s: domain.edit(s, actor, wanted, project)
        )
        return proposal_view(state)

    @rpc
    def withdraw_proposal(self, proposal_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            PROPOSAL, proposal_id, lambda s: domain.withdraw(s, actor, reason)
        )
        view = proposal_view(state)
        # (a new submission may have taken the slot over already: fine)
        released = [("BidSlotReleased", {"proposal_id": proposal_id})]
        self.event_log.run(
            SLOT,
            (state.project_id, state.seller_id),
            lambda slot: released if slot.proposal_id == proposal_id else [],
        )
        return view

    @rpc
    def shortlist_proposal(self, proposal_id: str, on: bool = True) -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(PROPOSAL, proposal_id, lambda s: domain.shortlist(s, actor, on))
        return proposal_view(state)

    @rpc
    def archive_proposal(self, proposal_id: str) -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(PROPOSAL, proposal_id, lambda s: domain.archive(s, actor))
        return proposal_view(state)

    @rpc
    def decline_proposal(self, proposal_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            PROPOSAL, proposal_id, lambda s: domain.decline(s, actor, reason)
        )
        return proposal_view(state)

    def _user(self, user_id: str) -> domain.UserFacts:
        """A user as identity's published events told it (unknown: no roles)."""
        return self.facts.await_fold(
            "identity", user_id, domain.evolve_user, domain.UserFacts(), lambda u: u.known
        )

    @rpc
    def invite_seller(self, project_id: str, seller_id: str, message: str = "") -> dict[str, Any]:
        data = load(api.InvitationRequest(), {"seller_id": seller_id, "message": message})
        project = self._project(project_id)
        invitee = str(data["seller_id"])
        seller = self._user(invitee)
        actor = self.context.actor_id
        state = self.event_log.run(
            INVITATION,
            (project_id, invitee),
            lambda s: domain.invite(s, project, actor, invitee, seller, data["message"]),
        )
        return invitation_view(state)

    @rpc
    def accept_invitation(self, project_id: str, seller_id: str) -> dict[str, Any]:
        project = self._project(project_id)
        actor = self.context.actor_id
        state = self.event_log.run(
            INVITATION,
            (project_id, seller_id),
            lambda s: domain.accept_invitation(s, actor, project),
        )
        return invitation_view(state)

    @rpc
    def decline_invitation(
        self, project_id: str, seller_id: str, reason: str = ""
    ) -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            INVITATION,
            (project_id, seller_id),
            lambda s: domain.decline_invitation(s, actor, reason),
        )
        return invitation_view(state)

    @event_handlers("projects", *domain.ENDING_PROJECT)
    def on_project_ended(self, payload: dict[str, Any]) -> None:
        """Invitations close with their project (those this service's view knows
        of; an invitation recorded a moment before is refused when accepted)."""
        event = decode_message(payload)
        reason = f"the project was {event.type.removeprefix('Project').lower()}"
        for seller_id in open_invitations(self.db, event.subject):
            self.event_log.run(
                INVITATION,
                (event.subject, seller_id),
                lambda s: domain.close_invitation(s, reason),
            )

    @event_handler("contracts", "ContractStarted")
    def on_contract_started(self, payload: dict[str, Any]) -> None:
        """Hire the contract's proposal; the project's other open proposals read
        "not selected" (those this service's view knows of: one submitted a
        moment before is left open)."""
        data = decode_message(payload).data
        hired, contract_id = data["proposal_id"], data["contract_id"]
        state = self.event_log.run(PROPOSAL, hired, lambda s: domain.hire(s, contract_id))
        if state.status != "hired":  # (refused: contracts cancels the contract)
            return
        for other in open_proposals(self.db, data["project_id"]):
            if other != hired:
                self.event_log.run(PROPOSAL, other, lambda s: domain.not_selected(s, contract_id))

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of
        them (and know them as erased: nobody invites them)."""
        forget_person(payload, self.event_log, self.facts)
        self.facts.learn(payload)
