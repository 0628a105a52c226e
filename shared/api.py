"""Building blocks every service's published API schemas share."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="Use a three-letter ISO 4217 code.")


class Strict(Schema):
    """Request schemas refuse fields they do not know (a typo is an error, not ignored)."""

    class Meta:
        unknown = RAISE


class ReasonRequest(Strict):
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


class ReputationSummary(Schema):
    """A user's reputation in one role, by the published formula (docs/reputation.md)."""

    formula_version = fields.Integer(required=True)
    score = fields.Float(allow_none=True, metadata={"description": "1-5; none before a review"})
    reviews = fields.Integer(required=True)
    contracts = fields.Integer(required=True)
    completion_rate = fields.Integer(allow_none=True, metadata={"description": "percent"})
    on_time_rate = fields.Integer(allow_none=True, metadata={"description": "percent"})
    rehire_rate = fields.Integer(allow_none=True, metadata={"description": "percent"})
    job_success = fields.Integer(allow_none=True, metadata={"description": "0-100"})


class Reputation(Schema):
    as_seller = fields.Nested(ReputationSummary, allow_none=True)
    as_buyer = fields.Nested(ReputationSummary, allow_none=True)


class SkillCount(Schema):
    """A search facet: how many of the matches have the skill."""

    skill = fields.String(required=True)
    count = fields.Integer(required=True)
