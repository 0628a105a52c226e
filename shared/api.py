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
