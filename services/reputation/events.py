"""The reputation service's events: its published API.

Stream ``feedback-<contract id>``: the review window a contract's end opens,
each party's review (once), and their reveal. Reputation itself is not
recorded: it is computed from these events by a published, versioned formula
(``services.reputation.formula``), so anyone can recompute it from an export.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.schemas import ALL, registry

STREAM_CATEGORIES = ("feedback",)
"""The categories of this service's streams: no other service reads them."""

SELLER_CATEGORIES = ("quality", "communication", "expertise", "deadlines", "value")
"""What a buyer rates a seller on."""
BUYER_CATEGORIES = ("clarity", "communication", "payment_promptness")
"""What a seller rates a buyer on."""


@registry.event("FeedbackWindowOpened", published=ALL)
class FeedbackWindowOpened(Schema):
    """A contract ended: its parties may review each other until ``closes_at``.
    Carries the contract's outcome, which the reputation formula uses."""

    contract_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("completed", "cancelled")))
    total_amount = fields.Integer(required=True)
    total_paid = fields.Integer(required=True)
    currency = fields.String(required=True)
    on_time = fields.Boolean(required=True)
    ended_at = fields.AwareDateTime(required=True)
    closes_at = fields.AwareDateTime(required=True)


@registry.event("ReviewSubmitted", published=ALL, personal={"text": "reviewer_id"})
class ReviewSubmitted(Schema):
    """Hidden from the reviewee until both reviewed or the window closed."""

    contract_id = fields.String(required=True)
    reviewer_id = fields.String(required=True)
    reviewee_id = fields.String(required=True)
    reviewee_role = fields.String(required=True, validate=validate.OneOf(("seller", "buyer")))
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    categories = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    text = fields.String(required=True)


@registry.event("ReviewsRevealed", published=ALL)
class ReviewsRevealed(Schema):
    contract_id = fields.String(required=True)
    reason = fields.String(
        required=True, validate=validate.OneOf(("both_reviewed", "window_closed"))
    )
