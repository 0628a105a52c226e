"""The contracts service: offers and their versions, then the contract they
start: milestones, submissions, revisions, approvals (by the buyer or by the
review period running out), disputes, agreed changes, and the end."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from nameko.timer import timer

from services.contracts import api, domain, hourly, views
from services.contracts.domain import Contract, EventSpec
from services.contracts.views import ContractsView
from shared.attachments import FILE_FACTS, check_own_files
from shared.config import settings
from shared.consumer import decode_message, event_handler, learns
from shared.erasure import forget_person
from shared.errors import Conflict, Forbidden, InvalidInput, StaleState
from shared.eventlog import Aggregate, ServiceEventLog
from shared.facts import LearnedFacts
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)


def contract_stream(contract_id: str) -> str:
    return f"contract-{contract_id}"


CONTRACT = Aggregate("contract", contract_stream, domain.evolve, Contract, lambda c: c.exists)


def casefile_stream(contract_id: str) -> str:
    """Who read a disputed contract's case, and what (the administrators' audit)."""
    return f"casefile-{contract_id}"


def _with_ids(terms: dict[str, Any], new_id: Any) -> dict[str, Any]:
    """Each milestone of a new offer version gets its id here."""
    milestones = [{**m, "milestone_id": new_id("milestone")} for m in terms["milestones"]]
    return {**terms, "milestones": milestones}


class ContractsService(MarketplaceService):
    name = "contracts"
    contract_views = ProjectionWorker(ContractsView(own_streams_only=True))
    facts = LearnedFacts()

    # -- what contracts learns of proposals, projects and files ---------------------

    @learns("bidding", *domain.PROPOSAL_FACTS)
    def learn_proposal(self, payloads: list[dict[str, Any]]) -> None:
        self.facts.learn_all(payloads)

    @learns("projects", *domain.PROJECT_FACTS)
    def learn_project(self, payloads: list[dict[str, Any]]) -> None:
        self.facts.learn_all(payloads)

    @learns("identity", *FILE_FACTS)
    def learn_file(self, payloads: list[dict[str, Any]]) -> None:
        self.facts.learn_all(payloads)

    @event_handler("projects", "ProjectAwardRefused")
    def on_award_refused(self, payload: dict[str, Any]) -> None:
        """The project closed while its offer was being accepted: see
        ``services.projects.domain.award``."""
        data = decode_message(payload).data
        self.event_log.run(CONTRACT, data["contract_id"], domain.cancel_refused_award)

    @event_handler("bidding", "ProposalHireRefused")
    def on_hire_refused(self, payload: dict[str, Any]) -> None:
        """The proposal was withdrawn or declined while its offer was being
        accepted: see ``services.bidding.domain.hire``."""
        data = decode_message(payload).data
        self.event_log.run(CONTRACT, data["contract_id"], domain.cancel_refused_award)

    def _offer_expiry(self) -> datetime | None:
        """When an offer version sent now lapses unanswered (0 days: never)."""
        days = float(self.nameko_config.get("OFFER_EXPIRY_DAYS", settings().offer_expiry_days))
        return self.clock.now() + timedelta(days=days) if days > 0 else None

    def _document(self, state: Contract) -> dict[str, Any]:
        """What a command answers: the contract as its parties read it (404 if none)."""
        return views.document(CONTRACT.require(state), self.clock.today())

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
            self.clock.today(),
            self._offer_expiry(),
        )
        try:  # (a retry of this request finds its own offer, by its events' ids)
            state = self.event_log.create(CONTRACT, contract_id, events)
        except StaleState:
            raise Conflict(
                "an offer was already sent on this proposal",
                {"reason": "offer_exists", "contract_id": contract_id},
            ) from None
        log.info("offer sent", contract_id=contract_id, proposal_id=proposal_id)
        return self._document(state)

    @rpc
    def request_offer_changes(self, contract_id: str, message: str) -> dict[str, Any]:
        data = load(api.MessageRequest(), {"message": message})
        actor, now = self.context.actor_id, self.clock.now()
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.request_offer_changes(s, actor, data["message"], now),
        )
        return self._document(state)

    @rpc
    def revise_offer(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        terms = _with_ids(load(api.ReviseOfferRequest(), request)["terms"], self.event_log.new_id)
        actor, today, expires_at = self.context.actor_id, self.clock.today(), self._offer_expiry()
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.revise_offer(s, actor, terms, today, expires_at),
        )
        return self._document(state)

    @rpc
    def withdraw_offer(self, contract_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.withdraw_offer(s, actor, reason)
        )
        return self._document(state)

    @rpc
    def decline_offer(self, contract_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.decline_offer(s, actor, reason)
        )
        return self._document(state)

    @rpc
    def accept_offer(self, contract_id: str, version: int) -> dict[str, Any]:
        load(api.AcceptOfferRequest(), {"version": version})
        actor, now = self.context.actor_id, self.clock.now()

        def decide(state: Contract) -> list[EventSpec]:
            events = domain.accept_offer(state, actor, version, now)
            project = self.facts.require(
                "projects", state.project_id, domain.evolve_project_status, "", bool, "project"
            )
            if project != "open":
                raise Conflict(
                    f"the project is {project or 'gone'}", {"reason": "project_not_open"}
                )
            return events

        state = self.event_log.run(CONTRACT, contract_id, decide)
        return self._document(state)

    # -- milestones ----------------------------------------------------------------

    @rpc
    def submit_work(
        self, contract_id: str, milestone_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        data = load(api.SubmitWorkRequest(), request)
        actor, now = self.context.actor_id, self.clock.now()
        files = check_own_files(self.facts, actor, data["file_ids"], "deliverable")
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.submit_work(s, actor, milestone_id, data["note"], files, now),
        )
        return self._document(state)

    @rpc
    def request_changes(self, contract_id: str, milestone_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.request_changes(s, actor, milestone_id, data["reason"]),
        )
        return self._document(state)

    @rpc
    def approve(self, contract_id: str, milestone_id: str) -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.approve(s, actor, milestone_id)
        )
        return self._document(state)

    @rpc
    def report_progress(self, contract_id: str, milestone_id: str, note: str) -> dict[str, Any]:
        data = load(api.NoteRequest(), {"note": note})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.report_progress(s, actor, milestone_id, data["note"]),
        )
        return self._document(state)

    @rpc
    def open_dispute(self, contract_id: str, milestone_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.open_dispute(s, actor, milestone_id, data["reason"]),
        )
        return self._document(state)

    @rpc
    def resolve_dispute(
        self, contract_id: str, milestone_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        if "admin" not in self.context.roles:
            raise Forbidden("only an administrator resolves disputes")
        data = load(api.ResolveDisputeRequest(), request)
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.resolve_dispute(
                s, actor, milestone_id, data["to_seller"], data["note"]
            ),
        )
        return self._document(state)

    @rpc
    def record_case_read(self, contract_id: str, part: str) -> dict[str, Any]:
        """Record that an administrator reads a disputed contract's case, before
        they are shown it (403 for anyone else, 409 with no open dispute)."""
        if "admin" not in self.context.roles:
            raise Forbidden("only an administrator reads a dispute's case")
        state = self.event_log.get(CONTRACT, contract_id)
        events = domain.read_case(state, self.context.actor_id, part[:100])
        # Append-only, at any revision: every read is recorded, none decides anything.
        self.event_log.record(casefile_stream(state.contract_id), events)
        return {"contract_id": state.contract_id, "recorded": True}

    @rpc
    def propose_change(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.MilestoneChangeRequest(), request)
        actor, today = self.context.actor_id, self.clock.today()
        change = _change_from(data, self.event_log.new_id("milestone"))
        change_id = self.event_log.new_id("change")
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.propose_change(s, actor, change_id, change, today),
        )
        return self._document(state)

    @rpc
    def answer_change(self, contract_id: str, change_id: str, accept: bool) -> dict[str, Any]:
        load(api.AnswerRequest(), {"accept": accept})
        actor, today = self.context.actor_id, self.clock.today()
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.respond_to_change(s, actor, change_id, accept, today),
        )
        return self._document(state)

    @rpc
    def propose_cancellation(self, contract_id: str, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.propose_cancellation(s, actor, data["reason"]),
        )
        return self._document(state)

    @rpc
    def answer_cancellation(self, contract_id: str, accept: bool) -> dict[str, Any]:
        load(api.AnswerRequest(), {"accept": accept})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.respond_to_cancellation(s, actor, accept)
        )
        return self._document(state)

    # -- hourly contracts ----------------------------------------------------------

    @rpc
    def record_time(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """The seller's minutes for a day; a tracker sends the same command."""
        data = load(api.TimeEntryRequest(), request)
        actor, today = self.context.actor_id, self.clock.today()
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.record_time(
                s, actor, data["day"], data["minutes"], data["memo"], today
            ),
        )
        return self._document(state)

    @rpc
    def approve_invoice(self, contract_id: str, week: int) -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.approve_invoice(s, actor, week)
        )
        return self._document(state)

    @rpc
    def dispute_invoice(self, contract_id: str, week: int, reason: str) -> dict[str, Any]:
        data = load(api.ChangesRequest(), {"reason": reason})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.dispute_invoice(s, actor, week, data["reason"]),
        )
        return self._document(state)

    @rpc
    def resolve_invoice_dispute(
        self, contract_id: str, week: int, request: dict[str, Any]
    ) -> dict[str, Any]:
        if "admin" not in self.context.roles:
            raise Forbidden("only an administrator resolves disputes")
        data = load(api.ResolveDisputeRequest(), request)
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.resolve_invoice_dispute(
                s, actor, week, data["to_seller"], data["note"]
            ),
        )
        return self._document(state)

    @rpc
    def retry_invoice_charge(
        self, contract_id: str, week: int, payment_method: str
    ) -> dict[str, Any]:
        data = load(api.PaymentMethodRequest(), {"payment_method": payment_method})
        actor = self.context.actor_id
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.retry_invoice_charge(s, actor, week, data["payment_method"]),
        )
        return self._document(state)

    @rpc
    def change_weekly_limit(self, contract_id: str, weekly_limit: int) -> dict[str, Any]:
        load(api.WeeklyLimitRequest(), {"weekly_limit": weekly_limit})
        actor, today = self.context.actor_id, self.clock.today()
        state = self.event_log.run(
            CONTRACT,
            contract_id,
            lambda s: domain.change_weekly_limit(s, actor, weekly_limit, today),
        )
        return self._document(state)

    @rpc
    def pause_hourly(self, contract_id: str, paused: bool) -> dict[str, Any]:
        load(api.PauseRequest(), {"paused": paused})
        actor, today = self.context.actor_id, self.clock.today()
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.pause_hourly(s, actor, paused, today)
        )
        return self._document(state)

    @rpc
    def end_hourly(self, contract_id: str, reason: str = "") -> dict[str, Any]:
        actor, now = self.context.actor_id, self.clock.now()
        state = self.event_log.run(
            CONTRACT, contract_id, lambda s: domain.end_hourly(s, actor, reason, now)
        )
        return self._document(state)

    def _decided_as(self, key: str) -> ServiceEventLog:
        """The event log as if for a request keyed ``key``: what the clock
        decides for a contract and a week gets event ids derived from them, so
        two timers (or a retry) record it once, and find their own events."""
        return ServiceEventLog(self.event_log.store, replace(self.context, request_key=key))

    # -- what escrow tells ---------------------------------------------------------

    @event_handler("escrow", "EscrowFunded")
    def on_escrow_funded(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        CONTRACT.require(
            self.event_log.run(
                CONTRACT,
                d["contract_id"],
                lambda s: domain.mark_funded(s, d["milestone_id"], d["amount"], d["charge_id"]),
            )
        )

    @event_handler("escrow", "EscrowReleased")
    def on_escrow_released(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        CONTRACT.require(
            self.event_log.run(
                CONTRACT,
                d["contract_id"],
                lambda s: domain.mark_paid(s, d["milestone_id"], d["amount"], d["fee"]),
            )
        )

    @event_handler("escrow", "FundingFailed")
    def on_funding_failed(self, payload: dict[str, Any]) -> None:
        """An hourly week's charge was declined (a milestone's funder saw it at once)."""
        event = decode_message(payload)
        d = event.data
        if not d.get("invoice_id"):
            return
        self.event_log.run(
            CONTRACT,
            event.subject,
            lambda s: domain.invoice_charge_failed(
                s, d["invoice_id"], int(d.get("attempt") or 1), d["reason"]
            ),
        )

    @event_handler("escrow", "EscrowDisputeSettled")
    def on_dispute_settled(self, payload: dict[str, Any]) -> None:
        d = decode_message(payload).data
        CONTRACT.require(
            self.event_log.run(
                CONTRACT,
                d["contract_id"],
                lambda s: domain.mark_settled(
                    s, d["milestone_id"], d["to_seller"], d["fee"], d["refunded"]
                ),
            )
        )

    # -- the review clock -----------------------------------------------------------

    @timer(interval=settings().contract_review_check_seconds)
    def approve_overdue_reviews(self) -> int:
        """Approve submissions whose review period ran out (decided from the log:
        the deadline is recorded in each submission)."""
        now = self.clock.now()
        with self.contract_views.connect() as conn:
            due = views.due_for_review(conn, now)
        return self.event_log.run_each(
            CONTRACT, due, lambda s: domain.auto_approvals(s, now), "review periods ran out"
        )

    @timer(interval=settings().contract_review_check_seconds)
    def expire_offers(self) -> int:
        """Record the offers that lapsed unanswered (their expiry is in the log)."""
        now = self.clock.now()
        with self.contract_views.connect() as conn:
            due = views.offers_to_expire(conn, now)
        return self.event_log.run_each(
            CONTRACT, due, lambda s: domain.expire_offer(s, now), "offers expired"
        )

    @timer(interval=settings().contract_reminder_check_seconds)
    def send_reminders(self) -> int:
        """Record the reminders that fell due (due soon, overdue, approval due
        soon): the read model names the candidates, the contract's own log
        decides, and remembers each reminder, so none is recorded twice."""
        now = self.clock.now()
        config = settings()
        due_hours = float(
            self.nameko_config.get(
                "MILESTONE_DUE_REMINDER_HOURS", config.milestone_due_reminder_hours
            )
        )
        approval_hours = float(
            self.nameko_config.get("APPROVAL_REMINDER_HOURS", config.approval_reminder_hours)
        )
        with self.contract_views.connect() as conn:
            candidates = views.due_for_reminders(conn, now, due_hours, approval_hours)
        return self.event_log.run_each(
            CONTRACT,
            candidates,
            lambda s: domain.reminders(s, now, due_hours, approval_hours),
            "reminders due",
        )

    @timer(interval=settings().contract_review_check_seconds)
    def bill_hourly_weeks(self) -> int:
        """Close the weeks that ended into invoices, and approve invoices whose
        review period ran out: decided from the log and the clock alone (the
        read model only says which contracts to look at)."""
        now = self.clock.now()
        with self.contract_views.connect() as conn:
            due = views.due_hourly(conn, now)
        for contract_id in due:
            state = self.event_log.get(CONTRACT, contract_id)
            if state.hourly is None:
                continue
            week = hourly.next_week_to_close(state.hourly)
            state = self._decided_as(f"hourly-close:{contract_id}:{week}").run(
                CONTRACT, contract_id, lambda s: domain.close_hourly_weeks(s, now)
            )
            for week in domain.invoices_due(state, now):
                self._decided_as(f"hourly-approve:{contract_id}:{week}").run(
                    CONTRACT, contract_id, _auto_approval(week, now)
                )
        if due:
            log.info("hourly weeks billed", contracts=len(due))
        return len(due)

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of them."""
        forget_person(payload, self.event_log, self.facts, [(self.contract_views, views.erase)])


def _auto_approval(week: int, now: datetime) -> Callable[[Contract], list[EventSpec]]:
    return lambda state: domain.auto_approve_invoice(state, week, now)


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
