"""The bidding service's events: its published API.

Streams: ``proposal-<proposal_id>`` (a proposal's life), ``bidslot-<project
id>_<seller id>`` (which proposal is a seller's active one on a project: at
most one) and ``invitation-<project id>_<seller id>``.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.money import MoneySchema
from shared.schemas import ACTOR, ALL, registry

STREAM_CATEGORIES = ("proposal", "bidslot", "invitation")
"""The categories of this service's streams: no other service reads them."""

PRICE_TYPES = ("fixed", "hourly")
PROPOSAL_STATUSES = ("submitted", "withdrawn", "declined", "hired", "not_selected")


class PriceSchema(MoneySchema):
    type = fields.String(required=True, validate=validate.OneOf(PRICE_TYPES))


class MilestoneSchema(Schema):
    title = fields.String(required=True)
    amount = fields.Integer(required=True)
    due_in_days = fields.Integer(required=True)


class ProposalContent(Schema):
    cover_letter = fields.String(required=True)
    price = fields.Nested(PriceSchema, required=True)
    duration_days = fields.Integer(required=True)
    milestones = fields.List(fields.Nested(MilestoneSchema), load_default=list)
    portfolio_item_ids = fields.List(fields.String(), load_default=list)
    attachment_ids = fields.List(fields.String(), load_default=list)


@registry.event("ProposalSubmitted", published=ALL, personal={"cover_letter": "seller_id"})
class ProposalSubmitted(ProposalContent):
    proposal_id = fields.String(required=True)
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    project_version = fields.Integer(required=True)


@registry.event("ProposalEdited", published=ALL, personal={"cover_letter": ACTOR})
class ProposalEdited(Schema):
    """The fields that changed, and the project version the edit answers."""

    project_version = fields.Integer(required=True)
    cover_letter = fields.String()
    price = fields.Nested(PriceSchema)
    duration_days = fields.Integer()
    milestones = fields.List(fields.Nested(MilestoneSchema))
    portfolio_item_ids = fields.List(fields.String())
    attachment_ids = fields.List(fields.String())


@registry.event("ProposalWithdrawn", published=ALL, personal={"reason": ACTOR})
class ProposalWithdrawn(Schema):
    reason = fields.String(load_default="")


@registry.event("ProposalShortlisted", published=ALL)
class ProposalShortlisted(Schema):
    pass


@registry.event("ProposalUnshortlisted", published=ALL)
class ProposalUnshortlisted(Schema):
    pass


@registry.event("ProposalArchived", published=ALL)
class ProposalArchived(Schema):
    pass


@registry.event("ProposalDeclined", published=ALL, personal={"reason": ACTOR})
class ProposalDeclined(Schema):
    reason = fields.String(load_default="")


@registry.event("ProposalHired", published=ALL)
class ProposalHired(Schema):
    contract_id = fields.String(required=True)


@registry.event("ProposalNotSelected", published=ALL)
class ProposalNotSelected(Schema):
    """A contract started on another proposal to the same project: this one
    was not chosen (an offer accepted on it later is refused)."""

    contract_id = fields.String(required=True)


@registry.event("ProposalHireRefused", published=ALL)
class ProposalHireRefused(Schema):
    """A contract started on a proposal already withdrawn or declined:
    contracts cancels it (see ``domain.hire``)."""

    contract_id = fields.String(required=True)
    status = fields.String(required=True)


@registry.event("BidSlotClaimed")
class BidSlotClaimed(Schema):
    proposal_id = fields.String(required=True)


@registry.event("BidSlotReleased")
class BidSlotReleased(Schema):
    proposal_id = fields.String(required=True)


@registry.event("SellerInvited", published=ALL, personal={"message": "buyer_id"})
class SellerInvited(Schema):
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    message = fields.String(load_default="")


class InvitationParties(Schema):
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)


@registry.event("InvitationAccepted", published=ALL)
class InvitationAccepted(InvitationParties):
    """The seller took the invitation up: messaging opens a conversation about it."""


@registry.event("InvitationDeclined", published=ALL, personal={"reason": "seller_id"})
class InvitationDeclined(InvitationParties):
    reason = fields.String(load_default="")


@registry.event("InvitationClosed", published=ALL)
class InvitationClosed(InvitationParties):
    """The project ended while the invitation was open."""

    reason = fields.String(required=True)
