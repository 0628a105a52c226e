"""The contracts service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.api import CURRENCY, Strict
from shared.money import MAX_AMOUNT


class MilestoneTermsRequest(Strict):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    acceptance_criteria = fields.String(load_default="", validate=validate.Length(max=5000))
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT)
    )
    due_date = fields.Date(required=True)
    revision_limit = fields.Integer(
        load_default=2, strict=True, validate=validate.Range(min=0, max=10)
    )


class HourlyTermsRequest(Strict):
    rate = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_AMOUNT // 168),
        metadata={"description": "Minor units per hour (a full week stays within any amount)."},
    )
    weekly_limit = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=168),
        metadata={"description": "At most this many hours are billed a week."},
    )
    start_date = fields.Date(required=True)
    payment_method = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "What each closed week is charged to."},
    )


class OfferTermsRequest(Strict):
    """Fixed-price (``milestones``) or hourly (``hourly``, and no milestones)."""

    currency = fields.String(required=True, validate=CURRENCY)
    scope = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    payment_terms = fields.String(load_default="", validate=validate.Length(max=5000))
    milestones = fields.List(
        fields.Nested(MilestoneTermsRequest), load_default=list, validate=validate.Length(max=20)
    )
    hourly = fields.Nested(HourlyTermsRequest, load_default=None)


class SendOfferRequest(Strict):
    terms = fields.Nested(OfferTermsRequest, required=True)
    review_days = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=1, max=60),
        metadata={
            "description": "Days the buyer has to review a submission; the "
            "marketplace's default (14) if absent."
        },
    )


class ReviseOfferRequest(Strict):
    terms = fields.Nested(OfferTermsRequest, required=True)


class MessageRequest(Strict):
    message = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class AcceptOfferRequest(Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class SubmitWorkRequest(Strict):
    note = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    file_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=20))


class NoteRequest(Strict):
    note = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class ChangesRequest(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ResolveDisputeRequest(Strict):
    to_seller = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT)
    )
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class MilestoneChangeRequest(Strict):
    """``add`` needs ``milestone``; ``edit`` needs ``milestone_id`` and ``milestone``;
    ``remove`` needs ``milestone_id``."""

    action = fields.String(required=True, validate=validate.OneOf(("add", "edit", "remove")))
    milestone_id = fields.String(load_default=None, validate=validate.Length(max=64))
    milestone = fields.Nested(MilestoneTermsRequest, load_default=None)


class AnswerRequest(Strict):
    accept = fields.Boolean(required=True)


class TimeEntryRequest(Strict):
    """The day's minutes (0 removes the day's entry), editable until its week closes."""

    day = fields.Date(required=True)
    minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1440))
    memo = fields.String(load_default="", validate=validate.Length(max=2000))


class WeeklyLimitRequest(Strict):
    weekly_limit = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=168)
    )


class PaymentMethodRequest(Strict):
    payment_method = fields.String(required=True, validate=validate.Length(min=1, max=100))


class PauseRequest(Strict):
    paused = fields.Boolean(required=True)


class HourlyTermsResponse(Schema):
    """(The buyer's card is not shown: the seller reads these terms too.)"""

    rate = fields.Integer(required=True)
    weekly_limit = fields.Integer(required=True)
    start_date = fields.String(required=True)


class InvoiceResponse(Schema):
    invoice_id = fields.String(required=True)
    minutes = fields.Integer(required=True)
    rate = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    status = fields.String(
        required=True,
        metadata={"description": "empty, in_review, approved, disputed, resolved, paid or settled"},
    )
    review_due_at = fields.String(allow_none=True)
    to_seller = fields.Integer(required=True)
    paid_amount = fields.Integer(required=True)
    fee = fields.Integer(required=True)
    attempt = fields.Integer(
        required=True, metadata={"description": "Which charge of it escrow makes (1 first)."}
    )


class TimeEntryResponse(Schema):
    day = fields.String(required=True)
    minutes = fields.Integer(required=True)
    memo = fields.String(required=True)


class WeekResponse(Schema):
    week = fields.Integer(required=True)
    week_start = fields.String(required=True)
    minutes = fields.Integer(required=True)
    limit_hours = fields.Integer(required=True)
    paused = fields.Boolean(required=True)
    closed = fields.Boolean(required=True)
    entries = fields.List(fields.Nested(TimeEntryResponse), required=True)
    invoice = fields.Nested(InvoiceResponse, allow_none=True)


class HourlyStateResponse(Schema):
    rate = fields.Integer(required=True)
    weekly_limit = fields.Integer(
        required=True, metadata={"description": "This week's limit in hours."}
    )
    paused = fields.Boolean(required=True, metadata={"description": "Paused this week."})
    ended = fields.Boolean(required=True)
    start_date = fields.String(required=True)
    billed = fields.Integer(required=True)
    paid = fields.Integer(required=True)
    weeks = fields.List(fields.Nested(WeekResponse), required=True)


class ContractMilestoneResponse(Schema):
    milestone_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String()
    acceptance_criteria = fields.String()
    amount = fields.Integer(required=True)
    due_date = fields.String(required=True)
    revision_limit = fields.Integer(required=True)


class MilestoneStateResponse(ContractMilestoneResponse):
    status = fields.String(
        required=True,
        metadata={
            "description": "pending, funded, submitted, changes_requested, approved, paid, "
            "disputed, resolved, settled or removed"
        },
    )
    submissions = fields.Integer(required=True)
    revisions_used = fields.Integer(required=True)
    review_due_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    paid_amount = fields.Integer(required=True)
    overdue = fields.Boolean(required=True)


class TermsResponse(Schema):
    currency = fields.String(required=True)
    scope = fields.String(required=True)
    payment_terms = fields.String()
    milestones = fields.List(fields.Nested(ContractMilestoneResponse), required=True)
    hourly = fields.Nested(HourlyTermsResponse, allow_none=True)


class PendingChangeResponse(Schema):
    change_id = fields.String(required=True)
    proposed_by = fields.String(required=True)
    change = fields.Dict(required=True)


class CancellationResponse(Schema):
    proposed_by = fields.String(required=True)
    reason = fields.String(required=True)


class ContractResponse(Schema):
    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    status = fields.String(required=True)
    offer_version = fields.Integer(required=True)
    offer_expires_at = fields.String(
        allow_none=True,
        metadata={
            "description": "When the offer lapses if the seller leaves it unanswered (null: never,"
            " or the seller answered)"
        },
    )
    review_seconds = fields.Integer(required=True)
    terms = fields.Nested(TermsResponse, required=True)
    milestones = fields.List(fields.Nested(MilestoneStateResponse), required=True)
    pending_changes = fields.List(fields.Nested(PendingChangeResponse), required=True)
    cancellation = fields.Nested(CancellationResponse, allow_none=True)
    hourly = fields.Nested(
        HourlyStateResponse,
        allow_none=True,
        metadata={"description": "An hourly contract's weeks and invoices (null: fixed-price)."},
    )


class OfferAnswerResponse(Schema):
    type = fields.String(
        required=True,
        validate=validate.OneOf(
            ("changes_requested", "declined", "withdrawn", "expired", "accepted")
        ),
    )
    by = fields.String(allow_none=True, metadata={"description": "Who answered (null: the clock)."})
    message = fields.String(
        required=True, metadata={"description": "The change request, or the reason given."}
    )
    at = fields.String(required=True)


class OfferVersionResponse(Schema):
    version = fields.Integer(required=True)
    terms = fields.Nested(TermsResponse, required=True)
    sent_at = fields.String(required=True)
    expires_at = fields.String(allow_none=True)
    answers = fields.List(
        fields.Nested(OfferAnswerResponse),
        required=True,
        metadata={"description": "What was said to this version, oldest first (empty: waiting)."},
    )


class OfferVersionList(Schema):
    items = fields.List(fields.Nested(OfferVersionResponse), required=True)


class ContractList(Schema):
    items = fields.List(fields.Nested(ContractResponse), required=True)


class HistoryEntry(Schema):
    type = fields.String(required=True)
    milestone_id = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    data = fields.Dict(required=True)
    at = fields.String(required=True)


class HistoryList(Schema):
    items = fields.List(fields.Nested(HistoryEntry), required=True)
