"""The contracts service's events: its published API.

Stream ``contract-<id>``: the offer and its versions, then the contract.
Milestone events join when the milestone work of the contracts issue lands.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.schemas import registry


@registry.event("ContractStarted")
class ContractStarted(Schema):
    """An offer was accepted: the project is awarded to the seller."""

    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    offer_version = fields.Integer(load_default=1)


class OfferMilestone(Schema):
    milestone_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(load_default="")
    acceptance_criteria = fields.String(load_default="")
    amount = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    revision_limit = fields.Integer(required=True)


class OfferTerms(Schema):
    currency = fields.String(required=True)
    scope = fields.String(required=True)
    payment_terms = fields.String(load_default="")
    milestones = fields.List(fields.Nested(OfferMilestone), required=True)


@registry.event("OfferSent")
class OfferSent(Schema):
    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    review_days = fields.Integer(required=True)
    terms = fields.Nested(OfferTerms, required=True)


@registry.event("OfferChangesRequested")
class OfferChangesRequested(Schema):
    version = fields.Integer(required=True)
    message = fields.String(required=True)


@registry.event("OfferRevised")
class OfferRevised(Schema):
    version = fields.Integer(required=True)
    terms = fields.Nested(OfferTerms, required=True)


@registry.event("OfferDeclined")
class OfferDeclined(Schema):
    version = fields.Integer(required=True)
    reason = fields.String(load_default="")
