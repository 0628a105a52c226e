"""Contracts routes: offers and their versions, milestones and their work,
disputes, milestone changes and cancellation (funding is escrow's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields
from werkzeug.wrappers import Request, Response

from gateway.blobs import file_response
from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, today
from services.contracts import api as contracts_api
from services.contracts import views as contracts_views
from services.escrow import api as escrow_api
from services.escrow import views as escrow_views
from services.identity import api as identity_api
from services.identity import views as identity_views
from services.messaging import api as messaging_api
from services.messaging import views as messaging_views
from shared.api import ReasonRequest
from shared.errors import NotFound
from shared.jsonready import json_ready


class ContractsRoutes(RoutesBase):
    """Offers and contracts: reads are for the contract's parties only."""

    # -- offers and contracts ----------------------------------------------------

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/offer",
        summary="Send an offer on a proposal",
        tags=("contracts",),
        body=contracts_api.SendOfferRequest,
        response=contracts_api.ContractResponse,
        status=201,
        location="/contracts/{contract_id}",
        errors=(404, 409),
        reads=("contract_views", "proposal_views"),
    )
    def send_offer(
        self, request: Request, proposal_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._known_proposal(proposal_id)
        offer = self.contracts.send_offer(proposal_id, json_ready(body))
        contract_id = str(offer["contract_id"])
        self._shown(
            self.contract_views,
            lambda conn: contracts_views.get_contract(conn, contract_id, today()),
        )
        return offer

    @endpoint(
        "GET",
        "/contracts/<contract_id>",
        summary="A contract or offer, with its milestones (its parties only)",
        tags=("contracts",),
        response=contracts_api.ContractResponse,
        errors=(404,),
        reads=("contract_views",),
    )
    def get_contract(self, request: Request, contract_id: str) -> dict[str, Any]:
        return self._contract_for_party(contract_id)

    @endpoint(
        "GET",
        "/contracts/<contract_id>/offers",
        summary="Every version of the offer",
        tags=("contracts",),
        response=contracts_api.OfferVersionList,
        errors=(404,),
        reads=("contract_views",),
    )
    def offer_versions(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.contract_views.connect() as conn:
            return {"items": contracts_views.list_versions(conn, contract_id)}

    @endpoint(
        "GET",
        "/contracts/<contract_id>/history",
        summary="What happened to the contract's milestones, oldest first",
        tags=("contracts",),
        response=contracts_api.HistoryList,
        errors=(404,),
        reads=("contract_views",),
    )
    def contract_history(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.contract_views.connect() as conn:
            return {"items": contracts_views.list_history(conn, contract_id)}

    @endpoint(
        "GET",
        "/me/contracts",
        summary="Your contracts and offers",
        tags=("contracts",),
        response=contracts_api.ContractList,
        reads=("contract_views",),
    )
    def my_contracts(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.contract_views.connect() as conn:
            return {
                "items": contracts_views.list_for_user(conn, self.scope.principal.user_id, today())
            }

    @endpoint(
        "POST",
        "/contracts/<contract_id>/request-changes",
        summary="Ask for changes to the offer",
        tags=("contracts",),
        body=contracts_api.MessageRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def request_offer_changes(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.request_offer_changes(contract_id, body["message"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/revise",
        summary="Send a revised offer (a new version)",
        tags=("contracts",),
        body=contracts_api.ReviseOfferRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def revise_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.revise_offer(contract_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/decline",
        summary="Decline the offer",
        tags=("contracts",),
        body=ReasonRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def decline_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.decline_offer(contract_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/withdraw",
        summary="Withdraw an offer the seller has not accepted (the buyer)",
        tags=("contracts",),
        body=ReasonRequest,
        response=contracts_api.ContractResponse,
        errors=(403, 404, 409),
    )
    def withdraw_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.withdraw_offer(contract_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/accept",
        summary="Accept the offer version you read: the contract starts",
        tags=("contracts",),
        body=contracts_api.AcceptOfferRequest,
        response=contracts_api.ContractResponse,
        errors=(403, 404, 409),
        verified=True,
    )
    def accept_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.accept_offer(contract_id, body["version"])

    # -- milestones ------------------------------------------------------------

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/submit",
        summary="Submit work on a funded milestone (the seller)",
        tags=("contracts",),
        body=contracts_api.SubmitWorkRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        reads=("contract_views", "profiles"),
    )
    def submit_work(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._known_contract(contract_id)
        self._own_files(body["file_ids"], "deliverable")
        return self.contracts.submit_work(contract_id, milestone_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/request-changes",
        summary="Ask for a revision of submitted work (the buyer; counts against the limit)",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def request_milestone_changes(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.request_changes(contract_id, milestone_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/approve",
        summary="Approve submitted work: its escrow is released to the seller",
        tags=("contracts",),
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def approve(self, request: Request, contract_id: str, milestone_id: str) -> dict[str, Any]:
        return self.contracts.approve(contract_id, milestone_id)

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/progress",
        summary="Post a progress update on a milestone (the seller)",
        tags=("contracts",),
        body=contracts_api.NoteRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def report_progress(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.report_progress(contract_id, milestone_id, body["note"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/dispute",
        summary="Dispute a funded milestone (either party): its escrow is frozen",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def open_dispute(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.open_dispute(contract_id, milestone_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/resolve",
        summary="Resolve a dispute with a split (administrators)",
        tags=("contracts",),
        body=contracts_api.ResolveDisputeRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
        role="admin",
    )
    def resolve_dispute(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.resolve_dispute(contract_id, milestone_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/changes",
        summary="Propose adding, changing or removing a milestone",
        tags=("contracts",),
        body=contracts_api.MilestoneChangeRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def propose_change(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.propose_change(contract_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/changes/<change_id>/answer",
        summary="Accept or refuse the other party's proposed change",
        tags=("contracts",),
        body=contracts_api.AnswerRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def answer_change(
        self, request: Request, contract_id: str, change_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.answer_change(contract_id, change_id, body["accept"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/cancellation",
        summary="Propose ending the contract (the buyer ends it at once if nothing is funded)",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def propose_cancellation(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.propose_cancellation(contract_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/cancellation/answer",
        summary="Agree to (held money is refunded) or refuse the proposed cancellation",
        tags=("contracts",),
        body=contracts_api.AnswerRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def answer_cancellation(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.answer_cancellation(contract_id, body["accept"])

    # -- hourly contracts --------------------------------------------------------

    @endpoint(
        "POST",
        "/contracts/<contract_id>/time",
        summary="Record a day's time on an hourly contract (the seller; 0 minutes removes it)",
        tags=("contracts",),
        body=contracts_api.TimeEntryRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def record_time(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.record_time(contract_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/weeks/<week>/approve",
        summary="Approve a week's invoice before its review period ends (the buyer)",
        tags=("contracts",),
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def approve_week(self, request: Request, contract_id: str, week: str) -> dict[str, Any]:
        return self.contracts.approve_invoice(contract_id, _week(week))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/weeks/<week>/dispute",
        summary="Dispute a week's invoice in its review period (the buyer): nothing is charged",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def dispute_week(
        self, request: Request, contract_id: str, week: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.dispute_invoice(contract_id, _week(week), body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/weeks/<week>/resolve",
        summary="Resolve a disputed week: what the seller is paid of it (administrators)",
        tags=("contracts",),
        body=contracts_api.ResolveDisputeRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
        role="admin",
    )
    def resolve_week(
        self, request: Request, contract_id: str, week: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.resolve_invoice_dispute(contract_id, _week(week), json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/weeks/<week>/pay",
        summary="Name another card for a week whose charge was declined (the buyer)",
        tags=("contracts",),
        body=contracts_api.PaymentMethodRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def retry_week_charge(
        self, request: Request, contract_id: str, week: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.retry_invoice_charge(contract_id, _week(week), body["payment_method"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/weekly-limit",
        summary="Change the weekly limit of hours from next week (the buyer)",
        tags=("contracts",),
        body=contracts_api.WeeklyLimitRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def change_weekly_limit(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.change_weekly_limit(contract_id, body["weekly_limit"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/pause",
        summary="Pause or resume an hourly contract from next week (the buyer)",
        tags=("contracts",),
        body=contracts_api.PauseRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def pause_hourly(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.pause_hourly(contract_id, body["paused"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/end",
        summary="End an hourly contract (either party): its last partial week is billed",
        tags=("contracts",),
        body=ReasonRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def end_hourly(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.end_hourly(contract_id, body["reason"])


def _week(week: str) -> int:
    """A week's number in a path: 0 for the first week, up to ten years of them."""
    if not (week.isascii() and week.isdigit()) or int(week) > 530:
        raise NotFound("no such week", {"week": week})
    return int(week)


# -- the administrators' desk ----------------------------------------------------------


class DisputeSummary(Schema):
    contract_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "milestone or week"})
    milestone_id = fields.String(allow_none=True, required=True)
    week = fields.Integer(allow_none=True, required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "minor units"})
    currency = fields.String(required=True)
    opened_by = fields.String(required=True)
    reason = fields.String(required=True)
    opened_at = fields.String(required=True)
    age_seconds = fields.Integer(required=True)


class DisputeList(Schema):
    items = fields.List(fields.Nested(DisputeSummary), required=True)


class DisputeCase(Schema):
    """Everything an administrator reads to decide: the read is recorded."""

    disputes = fields.List(fields.Nested(DisputeSummary), required=True)
    contract = fields.Nested(contracts_api.ContractResponse, required=True)
    history = fields.List(fields.Nested(contracts_api.HistoryEntry), required=True)
    escrow = fields.Nested(escrow_api.ContractEscrowResponse, required=True)
    conversation_id = fields.String(allow_none=True, required=True)
    messages = fields.List(fields.Nested(messaging_api.MessageResponse), required=True)
    files = fields.List(
        fields.Nested(identity_api.FileResponse),
        required=True,
        metadata={
            "description": "delivered and sent in the work room; download each from "
            "/admin/disputes/{contract_id}/files/{file_id}/content"
        },
    )


class AdminDeskRoutes(RoutesBase):
    """Administrators resolve disputes: the open ones, and each one's case."""

    @endpoint(
        "GET",
        "/admin/disputes",
        summary="Disputes waiting for an administrator, oldest first, with amounts and age",
        tags=("disputes",),
        response=DisputeList,
        role="admin",
        reads=("contract_views",),
    )
    def open_disputes(self, request: Request) -> dict[str, Any]:
        with self.contract_views.connect() as conn:
            return {"items": contracts_views.open_disputes(conn, datetime.now(UTC))}

    @endpoint(
        "GET",
        "/admin/disputes/<contract_id>",
        summary="A disputed contract's case: the contract, history, escrow, work room and files",
        tags=("disputes",),
        response=DisputeCase,
        errors=(404, 409),
        role="admin",
        reads=("contract_views", "escrow_views", "messaging_views", "profiles"),
    )
    def dispute_case(self, request: Request, contract_id: str) -> dict[str, Any]:
        """Only while a dispute waits, never on your own contract; the read is
        recorded in the log (``DisputeCaseRead``) before anything is shown."""
        self._known_contract(contract_id)
        self.contracts.record_case_read(contract_id, "case")
        with self.contract_views.connect() as conn:
            contract = contracts_views.get_contract(conn, contract_id, today())
            history = contracts_views.list_history(conn, contract_id)
            disputes = contracts_views.open_disputes(conn, datetime.now(UTC), contract_id)
        with self.escrow_views.connect() as conn:
            escrow = escrow_views.contract_escrow(conn, contract_id)
        conversation_id, messages = self._work_room(contract_id)
        # One connection at a time: the embedded default keeps every view in
        # one SQLite file behind a pool of one, where a nested connect waits forever.
        file_ids = self._case_file_ids(contract_id, messages)
        with self.profiles.connect() as conn:
            files = identity_views.file_records(conn, file_ids)
        return {
            "disputes": disputes,
            "contract": contract,
            "history": history,
            "escrow": escrow,
            "conversation_id": conversation_id,
            "messages": messages,
            "files": files,
        }

    @endpoint(
        "GET",
        "/admin/disputes/<contract_id>/files/<file_id>/content",
        summary="Download a file of a disputed contract's case (the read is recorded)",
        tags=("disputes",),
        errors=(404, 409),
        role="admin",
        reads=("contract_views", "messaging_views", "profiles"),
    )
    def dispute_file(self, request: Request, contract_id: str, file_id: str) -> Response:
        self._known_contract(contract_id)
        _, messages = self._work_room(contract_id)
        if file_id not in self._case_file_ids(contract_id, messages):
            raise NotFound("no such file in this contract's case")
        self.contracts.record_case_read(contract_id, f"file:{file_id}")
        with self.profiles.connect() as conn:
            records = identity_views.file_records(conn, [file_id])
        if not records:
            raise NotFound("no such file in this contract's case")
        return file_response(self.blobs, records[0])

    def _work_room(self, contract_id: str) -> tuple[str | None, list[dict[str, Any]]]:
        with self.messaging_views.connect() as conn:
            conversation_id = messaging_views.contract_conversation(conn, contract_id)
            if conversation_id is None:
                return None, []
            page = messaging_views.list_messages(conn, conversation_id, "asc", CASE_MESSAGES, None)
        return conversation_id, list(page["items"])

    def _case_file_ids(self, contract_id: str, messages: list[dict[str, Any]]) -> list[str]:
        with self.contract_views.connect() as conn:
            delivered = contracts_views.case_files(conn, contract_id)
        sent = [str(f) for m in messages for f in m.get("file_ids") or []]
        return list(dict.fromkeys([*delivered, *sent]))


CASE_MESSAGES = 1000
"""The work room's messages a case shows (its first ones: how it began)."""
