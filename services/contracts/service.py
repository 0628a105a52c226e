"""The contracts service: offers and their versions, then the contract they
start: milestones, submissions, revisions, approvals (by the buyer or by the
review period running out), disputes, agreed changes, and the end."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from nameko.timer import timer

from services.contracts import api, domain, views
from services.contracts.domain import Contract, EventSpec
from services.contracts.views import ContractsView
from shared.attachments import FILE_FACTS, check_own_files
from shared.config import settings
from shared.consumer import decode_message, event_handler, event_handlers
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.eventstore import StreamState
from shared.facts import LearnedFacts
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)


def contract_stream(contract_id: str) -> str:
    return f"contract-{contract_id}"


def _with_ids(terms: dict[str, Any], new_id: Any) -> dict[str, Any]:
    """Each milestone of a new offer version gets its id here."""
    milestones = [{**m, "milestone_id": new_id("milestone")} for m in terms["milestones"]]
    return {**terms, "milestones": milestones}


class ContractsService(MarketplaceService):
    name = "contracts"
    contract_views = ProjectionWorker(ContractsView())
    facts = LearnedFacts()

    # -- what contracts learns of proposals, projects and files ---------------------

    @event_handlers("bidding", *domain.PROPOSAL_FACTS)
    def learn_proposal(self, payload: dict[str, Any]) -> None:
        self.facts.learn(payload)

    @event_handlers("projects", *domain.PROJECT_FACTS)
    def learn_project(self, payload: dict[str, Any]) -> None:
        self.facts.learn(payload)

    @event_handlers("identity", *FILE_FACTS)
    def learn_file(self, payload: dict[str, Any]) -> None:
        self.facts.learn(payload)

    @event_handler("projects", "ProjectAwardRefused")
    def on_award_refused(self, payload: dict[str, Any]) -> None:
        """The project closed while its offer was being accepted: see
        ``services.projects.domain.award``."""
        data = decode_message(payload).data
        self._change(data["contract_id"], domain.cancel_refused_award)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _today(self) -> date:
        return self._now().date()

    def _change(self, contract_id: str, decide: Any) -> dict[str, Any]:
        stream = contract_stream(known_id(contract_id, "contract"))
        state = self.event_log.command(stream, domain.evolve, Contract(), decide)
        if not state.exists:
            raise NotFound("no such contract")
        return views.document(state, self._today())

    # -- offers ------------------------------------------------------------------

    @rpc
    def send_offer(self, proposal_id: str, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.SendOfferRequest(), request)
        proposal = self.facts.require(
            "bidding",
            known_id(proposal_id, "proposal"),
            domain.evolve_proposal,
            {},
            bool,
            "proposal",
        )
        contract_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"contract-for-proposal:{proposal_id}"))
        review_days = data["review_days"] or float(
            self.nameko_config.get("CONTRACT_REVIEW_DAYS", settings().contract_review_days)
        )
        events = domain.send_offer(
            Contract(),
            contract_id,
            proposal,
            self.context.actor_id,
            _with_ids(data["terms"], self.event_log.new_id),
            max(1, round(review_days * 86_400)),
            self._today(),
        )
        stream = contract_stream(contract_id)
        if self.event_log.recorded_by_this_request(stream):
            return self._change(contract_id, lambda state: [])  # a retry
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
        terms = _with_ids(load(api.ReviseOfferRequest(), request)["terms"], self.event_log.new_id)
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

        def decide(state: Contract) -> list[EventSpec]:
            events = domain.accept_offer(state, actor, version)
            project = self.facts.require(
                "projects", state.project_id, domain.evolve_project_status, "", bool, "project"
            )
            if project != "open":
                raise Conflict(
                    f"the project is {project or 'gone'}", {"reason": "project_not_open"}
                )
            return events

        return self._change(contract_id, decide)

    # -- milestones ----------------------------------------------------------------

    @rpc
    def submit_work(
        self, contract_id: str, milestone_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        data = load(api.SubmitWorkRequest(), request)
        actor, now = self.context.actor_id, self._now()
        files = check_own_files(self.facts, actor, data["file_ids"])
        return self._change(
            contract_id,
            lambda s: domain.submit_work(s, actor, milestone_id, data["note"], files, now),
        )

    @rpc
    def request_changes(self, contract_id: str, milestone_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        return self._change(
            contract_id, lambda s: domain.request_changes(s, actor, milestone_id, data["reason"])
        )

    @rpc
    def approve(self, contract_id: str, milestone_id: str) -> dict[str, Any]:
        actor = self.context.actor_id
        return self._change(contract_id, lambda s: domain.approve(s, actor, milestone_id))

    @rpc
    def report_progress(self, contract_id: str, milestone_id: str, note: str) -> dict[str, Any]:
        data = load(api.NoteRequest(), {"note": note})
        actor = self.context.actor_id
        return self._change(
            contract_id, lambda s: domain.report_progress(s, actor, milestone_id, data["note"])
        )

    @rpc
    def open_dispute(self, contract_id: str, milestone_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        return self._change(
            contract_id, lambda s: domain.open_dispute(s, actor, milestone_id, data["reason"])
        )

    @rpc
    def resolve_dispute(
        self, contract_id: str, milestone_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        if "admin" not in self.context.roles:
            raise Forbidden("only an administrator resolves disputes")
        data = load(api.ResolveDisputeRequest(), request)
        actor = self.context.actor_id
        return self._change(
            contract_id,
            lambda s: domain.resolve_dispute(
                s, actor, milestone_id, data["to_seller"], data["note"]
            ),
        )

    @rpc
    def propose_change(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.MilestoneChangeRequest(), request)
        actor, today = self.context.actor_id, self._today()
        change = _change_from(data, self.event_log.new_id("milestone"))
        change_id = self.event_log.new_id("change")
        return self._change(
            contract_id, lambda s: domain.propose_change(s, actor, change_id, change, today)
        )

    @rpc
    def answer_change(self, contract_id: str, change_id: str, accept: bool) -> dict[str, Any]:
        load(api.AnswerRequest(), {"accept": accept})
        actor, today = self.context.actor_id, self._today()
        return self._change(
            contract_id, lambda s: domain.respond_to_change(s, actor, change_id, accept, today)
        )

    @rpc
    def propose_cancellation(self, contract_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        return self._change(
            contract_id, lambda s: domain.propose_cancellation(s, actor, data["reason"])
        )

    @rpc
    def answer_cancellation(self, contract_id: str, accept: bool) -> dict[str, Any]:
        load(api.AnswerRequest(), {"accept": accept})
        actor = self.context.actor_id
        return self._change(contract_id, lambda s: domain.respond_to_cancellation(s, actor, accept))

    # -- what escrow tells ---------------------------------------------------------

    @event_handler("escrow", "EscrowFunded")
    def on_escrow_funded(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        self._change(
            d["contract_id"],
            lambda s: domain.mark_funded(s, d["milestone_id"], d["amount"], d["charge_id"]),
        )

    @event_handler("escrow", "EscrowReleased")
    def on_escrow_released(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        self._change(
            d["contract_id"],
            lambda s: domain.mark_paid(s, d["milestone_id"], d["amount"], d["fee"]),
        )

    @event_handler("escrow", "EscrowDisputeSettled")
    def on_dispute_settled(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        self._change(
            d["contract_id"],
            lambda s: domain.mark_settled(
                s, d["milestone_id"], d["to_seller"], d["fee"], d["refunded"]
            ),
        )

    # -- the review clock -----------------------------------------------------------

    @timer(interval=settings().contract_review_check_seconds)
    def approve_overdue_reviews(self) -> int:
        """Approve submissions whose review period ran out (decided from the log:
        the deadline is recorded in each submission)."""
        now = self._now()
        with self.contract_views.connect() as conn:
            due = views.due_for_review(conn, now)
        for contract_id in due:
            self.event_log.command(
                contract_stream(contract_id),
                domain.evolve,
                Contract(),
                lambda s: domain.auto_approvals(s, now),
            )
        if due:
            log.info("review periods ran out", contracts=len(due))
        return len(due)


def _change_from(data: dict[str, Any], new_milestone_id: str) -> dict[str, Any]:
    action = data["action"]
    if action != "add" and not data["milestone_id"]:
        raise InvalidInput(
            f"say which milestone to {action}", {"fields": {"milestone_id": ["Required."]}}
        )
    if action != "remove" and data["milestone"] is None:
        raise InvalidInput("describe the milestone", {"fields": {"milestone": ["Required."]}})
    milestone_id = new_milestone_id if action == "add" else data["milestone_id"]
    milestone = None
    if data["milestone"] is not None:
        milestone = {**data["milestone"], "milestone_id": milestone_id}
    return {"action": action, "milestone_id": milestone_id, "milestone": milestone}
