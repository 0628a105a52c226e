"""The contracts service: offers and their versions; the contract they start."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.contracts import api, domain
from services.contracts.domain import Contract
from shared.errors import Conflict, NotFound
from shared.eventstore import StreamState
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)


def contract_stream(contract_id: str) -> str:
    return f"contract-{contract_id}"


def _with_ids(terms: dict[str, Any]) -> dict[str, Any]:
    """Each milestone of a new offer version gets its id here."""
    milestones = [{**m, "milestone_id": str(uuid.uuid4())} for m in terms["milestones"]]
    return {**terms, "milestones": milestones}


def contract_view(state: Contract) -> dict[str, Any]:
    return json_ready(
        {
            "contract_id": state.contract_id,
            "project_id": state.project_id,
            "proposal_id": state.proposal_id,
            "buyer_id": state.buyer_id,
            "seller_id": state.seller_id,
            "status": state.status,
            "offer_version": state.offer_version,
            "review_days": state.review_days,
            "terms": state.terms,
        }
    )


class ContractsService(MarketplaceService):
    name = "contracts"

    def _today(self) -> Any:
        return datetime.now(UTC).date()

    def _change(self, contract_id: str, decide: Any) -> dict[str, Any]:
        stream = contract_stream(known_id(contract_id, "contract"))
        state = self.event_log.command(stream, domain.evolve, Contract(), decide)
        if not state.exists:
            raise NotFound("no such contract")
        return contract_view(state)

    @rpc
    def send_offer(self, proposal_id: str, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.SendOfferRequest(), request)
        proposal_stream = f"proposal-{known_id(proposal_id, 'proposal')}"
        proposal, _ = self.event_log.state(proposal_stream, domain.evolve_proposal, {})
        if not proposal:
            raise NotFound("no such proposal")
        contract_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"contract-for-proposal:{proposal_id}"))
        events = domain.send_offer(
            Contract(),
            contract_id,
            proposal,
            self.context.actor_id,
            _with_ids(data["terms"]),
            data["review_days"],
            self._today(),
        )
        stream = contract_stream(contract_id)
        if self.event_log.store.stream_revision(stream) is not None:
            raise Conflict(
                "an offer was already sent on this proposal",
                {"reason": "offer_exists", "contract_id": contract_id},
            )
        self.event_log.record(stream, events, StreamState.NO_STREAM)
        log.info("offer sent", contract_id=contract_id, proposal_id=proposal_id)
        return self._change(contract_id, lambda state: [])

    @rpc
    def request_offer_changes(self, contract_id: str, message: str) -> dict[str, Any]:
        data = load(api.MessageRequest(), {"message": message})
        actor = self.context.actor_id
        return self._change(
            contract_id, lambda s: domain.request_offer_changes(s, actor, data["message"])
        )

    @rpc
    def revise_offer(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        terms = _with_ids(load(api.ReviseOfferRequest(), request)["terms"])
        actor, today = self.context.actor_id, self._today()
        return self._change(contract_id, lambda s: domain.revise_offer(s, actor, terms, today))

    @rpc
    def decline_offer(self, contract_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        return self._change(contract_id, lambda s: domain.decline_offer(s, actor, reason))

    @rpc
    def accept_offer(self, contract_id: str, version: int) -> dict[str, Any]:
        load(api.AcceptOfferRequest(), {"version": version})
        actor = self.context.actor_id

        def decide(state: Contract) -> list[domain.EventSpec]:
            events = domain.accept_offer(state, actor, version)
            project, _ = self.event_log.state(
                f"project-{state.project_id}", domain.evolve_project_status, ""
            )
            if project != "open":
                raise Conflict(
                    f"the project is {project or 'gone'}", {"reason": "project_not_open"}
                )
            return events

        return self._change(contract_id, decide)
