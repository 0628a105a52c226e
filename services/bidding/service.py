"""The bidding service: proposals, shortlists and invitations."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from services.bidding import api, domain
from services.bidding.domain import ProjectFacts, Proposal, Slot
from shared.consumer import decode_message, event_handler, event_handlers
from shared.errors import Conflict, Forbidden, NotFound, StaleState
from shared.eventstore import StreamState
from shared.facts import LearnedFacts
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)


def proposal_view(state: Proposal) -> dict[str, Any]:
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

    @event_handlers("projects", *domain.PROJECT_FACTS)
    def learn_project(self, payload: dict[str, Any]) -> None:
        """What bidding needs of a project, kept from projects' published events."""
        self.facts.learn(payload)

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

    def _proposal(self, proposal_id: str) -> tuple[Proposal, int | None]:
        return self.event_log.state(
            domain.proposal_stream(known_id(proposal_id, "proposal")), domain.evolve, Proposal()
        )

    def _change(self, proposal_id: str, decide: Any) -> dict[str, Any]:
        stream = domain.proposal_stream(known_id(proposal_id, "proposal"))
        state = self.event_log.command(stream, domain.evolve, Proposal(), decide)
        if not state.exists:
            raise NotFound("no such proposal")
        return proposal_view(state)

    @rpc
    def submit_proposal(self, project_id: str, content: dict[str, Any]) -> dict[str, Any]:
        data = domain.check_content(json_ready(load(api.ProposalRequest(), content)))
        seller = self.context.actor_id
        project = self._project(project_id)
        slot_name = domain.slot_stream(project_id, seller)
        slot, slot_revision = self.event_log.state(slot_name, domain.evolve_slot, Slot())
        proposal_id = self.event_log.new_id("proposal")
        if slot.proposal_id != proposal_id:  # else a retry: its first attempt claimed the slot
            holder = self._proposal(slot.proposal_id)[0] if slot.proposal_id else Proposal()
            events = domain.submit(project, slot, holder, seller, datetime.now(UTC))
            events.append(("BidSlotClaimed", {"proposal_id": proposal_id}))
            expected = StreamState.NO_STREAM if slot_revision is None else slot_revision
            try:
                self.event_log.record(slot_name, events, expected)
            except StaleState:
                raise Conflict(
                    "you already have a proposal on this project",
                    {"reason": "duplicate_proposal"},
                ) from None
        submitted = {
            "proposal_id": proposal_id,
            "project_id": project_id,
            "buyer_id": project.buyer_id,
            "seller_id": seller,
            "project_version": project.version,
            **data,
        }
        self.event_log.record(
            domain.proposal_stream(proposal_id),
            [("ProposalSubmitted", submitted)],
            StreamState.NO_STREAM,
        )
        log.info("proposal submitted", proposal_id=proposal_id, project_id=project_id)
        return proposal_view(self._proposal(proposal_id)[0])

    @rpc
    def edit_proposal(self, proposal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = json_ready(load(api.ProposalEditRequest(), changes))
        actor = self.context.actor_id
        current, _ = self._proposal(proposal_id)
        project = self._project(current.project_id) if current.exists else ProjectFacts()
        return self._change(proposal_id, lambda state: domain.edit(state, actor, wanted, project))

    @rpc
    def withdraw_proposal(self, proposal_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        view = self._change(proposal_id, lambda state: domain.withdraw(state, actor, reason))
        slot_name = domain.slot_stream(view["project_id"], view["seller_id"])
        slot, revision = self.event_log.state(slot_name, domain.evolve_slot, Slot())
        if slot.proposal_id == proposal_id:
            # (a new submission may have taken the slot over already: fine)
            with suppress(StaleState):
                self.event_log.record(
                    slot_name, [("BidSlotReleased", {"proposal_id": proposal_id})], revision
                )
        return view

    @rpc
    def shortlist_proposal(self, proposal_id: str, on: bool = True) -> dict[str, Any]:
        actor = self.context.actor_id
        return self._change(proposal_id, lambda state: domain.shortlist(state, actor, on))

    @rpc
    def archive_proposal(self, proposal_id: str) -> dict[str, Any]:
        actor = self.context.actor_id
        return self._change(proposal_id, lambda state: domain.archive(state, actor))

    @rpc
    def decline_proposal(self, proposal_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        return self._change(proposal_id, lambda state: domain.decline(state, actor, reason))

    @rpc
    def invite_seller(self, project_id: str, seller_id: str, message: str = "") -> dict[str, Any]:
        data = load(api.InvitationRequest(), {"seller_id": seller_id, "message": message})
        project = self._project(project_id)
        if not project.project_id:
            raise NotFound("no such project")
        if project.buyer_id != self.context.actor_id:
            raise Forbidden("only the project's buyer may invite sellers")
        if project.status != "open":
            raise Conflict(f"the project is {project.status}", {"reason": "project_not_open"})
        invited = {
            "project_id": project_id,
            "buyer_id": project.buyer_id,
            "seller_id": str(data["seller_id"]),
            "message": data["message"],
        }
        stream = domain.invitation_stream(project_id, invited["seller_id"])
        self.event_log.record(stream, [("SellerInvited", invited)])
        return invited

    @event_handler("contracts", "ContractStarted")
    def on_contract_started(self, payload: dict[str, Any]) -> None:
        data = decode_message(payload).data
        self.event_log.execute(
            domain.proposal_stream(data["proposal_id"]),
            domain.evolve,
            Proposal(),
            lambda state: domain.hire(state, data["contract_id"]),
        )
