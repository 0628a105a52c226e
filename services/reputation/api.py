"""The reputation service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.api import Strict


class ReviewRequest(Strict):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    categories = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=5)),
        required=True,
        metadata={
            "description": "Reviewing a seller: quality, communication, expertise, deadlines, "
            "value. Reviewing a buyer: clarity, communication, payment_promptness. Each 1-5."
        },
    )
    text = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ReviewResponse(Schema):
    contract_id = fields.String(required=True)
    reviewer_id = fields.String(required=True)
    reviewee_id = fields.String(required=True)
    reviewee_role = fields.String(required=True)
    rating = fields.Integer(required=True)
    categories = fields.Dict(required=True)
    text = fields.String(required=True)
    submitted_at = fields.String(required=True)


class ContractReviews(Schema):
    closes_at = fields.String(required=True)
    revealed = fields.Boolean(required=True)
    pending_from_other = fields.Boolean(
        required=True,
        metadata={"description": "The other party reviewed; you see it once revealed"},
    )
    items = fields.List(fields.Nested(ReviewResponse), required=True)


class ReviewList(Schema):
    items = fields.List(fields.Nested(ReviewResponse), required=True)


class SubmittedResponse(Schema):
    contract_id = fields.String(required=True)
    revealed = fields.Boolean(required=True)
