"""The bidding service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.bidding.events import PRICE_TYPES, PROPOSAL_STATUSES
from shared.api import CURRENCY, ReputationSummary, Strict
from shared.money import MAX_AMOUNT


class PriceRequest(Strict):
    type = fields.String(required=True, validate=validate.OneOf(PRICE_TYPES))
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT)
    )
    currency = fields.String(required=True, validate=CURRENCY)


class MilestoneRequest(Strict):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT)
    )
    due_in_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=3650)
    )


class ProposalRequest(Strict):
    cover_letter = fields.String(required=True, validate=validate.Length(min=20, max=10_000))
    price = fields.Nested(PriceRequest, required=True)
    duration_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=3650)
    )
    milestones = fields.List(
        fields.Nested(MilestoneRequest), load_default=list, validate=validate.Length(max=20)
    )
    portfolio_item_ids = fields.List(
        fields.UUID(), load_default=list, validate=validate.Length(max=10)
    )
    attachment_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10))


class ProposalEditRequest(Strict):
    cover_letter = fields.String(validate=validate.Length(min=20, max=10_000))
    price = fields.Nested(PriceRequest)
    duration_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=3650))
    milestones = fields.List(fields.Nested(MilestoneRequest), validate=validate.Length(max=20))
    portfolio_item_ids = fields.List(fields.UUID(), validate=validate.Length(max=10))
    attachment_ids = fields.List(fields.UUID(), validate=validate.Length(max=10))


class InvitationRequest(Strict):
    seller_id = fields.UUID(required=True)
    message = fields.String(load_default="", validate=validate.Length(max=2000))


class ProposalQuery(Strict):
    status = fields.String(load_default=None, validate=validate.OneOf(PROPOSAL_STATUSES))
    shortlisted = fields.Boolean(load_default=None)
    archived = fields.Boolean(load_default=False)
    sort = fields.String(
        load_default="newest", validate=validate.OneOf(("newest", "price", "duration"))
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class PriceResponse(Schema):
    type = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)


class MilestoneResponse(Schema):
    title = fields.String()
    amount = fields.Integer(allow_none=True)
    due_in_days = fields.Integer(allow_none=True)


class SellerSummary(Schema):
    user_id = fields.String(required=True)
    headline = fields.String(allow_none=True)
    skills = fields.List(fields.String())
    hourly_rate = fields.Dict(allow_none=True)
    photo_file_id = fields.String(allow_none=True)
    reputation = fields.Nested(ReputationSummary, allow_none=True)


class ProposalResponse(Schema):
    proposal_id = fields.String(required=True)
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    status = fields.String(required=True)
    shortlisted = fields.Boolean(metadata={"description": "buyer's view only"})
    archived = fields.Boolean(metadata={"description": "buyer's view only"})
    project_version = fields.Integer(
        required=True, metadata={"description": "The project's version the proposal answers."}
    )
    project_changed_since = fields.Boolean(
        metadata={"description": "Whether the project was edited after that version."}
    )
    cover_letter = fields.String(required=True)
    price = fields.Nested(PriceResponse, required=True)
    duration_days = fields.Integer(required=True)
    milestones = fields.List(fields.Nested(MilestoneResponse))
    portfolio_item_ids = fields.List(fields.String())
    attachment_ids = fields.List(fields.String())
    decline_reason = fields.String(allow_none=True)
    submitted_at = fields.String()
    updated_at = fields.String()
    seller = fields.Nested(SellerSummary)
    samples = fields.List(
        fields.Nested(lambda: SampleResponse()),
        metadata={"description": "in the buyer's list: the portfolio items shown"},
    )


class SampleResponse(Schema):
    """A portfolio item the seller shows with the proposal."""

    item_id = fields.String(required=True)
    title = fields.String(required=True)
    type = fields.String(
        required=True,
        metadata={"description": "the first file's content type, or link, or text"},
    )
    url = fields.String(allow_none=True, required=True)


class ProposalPage(Schema):
    items = fields.List(fields.Nested(ProposalResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class InvitationResponse(Schema):
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    message = fields.String()
    invited_at = fields.String()
    status = fields.String(
        metadata={"description": "open, accepted, declined, or closed (the project ended)"}
    )
    reason = fields.String(allow_none=True, metadata={"description": "why it was declined"})
    answered_at = fields.String(allow_none=True)
    conversation_id = fields.String(
        allow_none=True,
        metadata={"description": "on accepting: the conversation about the invitation"},
    )


class InvitationList(Schema):
    items = fields.List(fields.Nested(InvitationResponse), required=True)
