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


class OfferTermsRequest(Strict):
    currency = fields.String(required=True, validate=CURRENCY)
    scope = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    payment_terms = fields.String(load_default="", validate=validate.Length(max=5000))
    milestones = fields.List(
        fields.Nested(MilestoneTermsRequest), required=True, validate=validate.Length(min=1, max=20)
    )


class SendOfferRequest(Strict):
    terms = fields.Nested(OfferTermsRequest, required=True)
    review_days = fields.Integer(
        load_default=14, strict=True, validate=validate.Range(min=1, max=60)
    )


class ReviseOfferRequest(Strict):
    terms = fields.Nested(OfferTermsRequest, required=True)


class MessageRequest(Strict):
    message = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class AcceptOfferRequest(Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class ContractMilestoneResponse(Schema):
    milestone_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String()
    acceptance_criteria = fields.String()
    amount = fields.Integer(required=True)
    due_date = fields.String(required=True)
    revision_limit = fields.Integer(required=True)


class TermsResponse(Schema):
    currency = fields.String(required=True)
    scope = fields.String(required=True)
    payment_terms = fields.String()
    milestones = fields.List(fields.Nested(ContractMilestoneResponse), required=True)


class ContractResponse(Schema):
    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    status = fields.String(required=True)
    offer_version = fields.Integer(required=True)
    review_days = fields.Integer(required=True)
    terms = fields.Nested(TermsResponse, required=True)


class OfferVersionResponse(Schema):
    version = fields.Integer(required=True)
    terms = fields.Nested(TermsResponse, required=True)
    sent_at = fields.String(required=True)


class OfferVersionList(Schema):
    items = fields.List(fields.Nested(OfferVersionResponse), required=True)


class ContractList(Schema):
    items = fields.List(fields.Nested(ContractResponse), required=True)
