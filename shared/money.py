"""Money: integer minor units with an ISO 4217 currency, never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = 10**13  # a hundred billion in major units: beyond any real contract


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    """Minor units (cents for USD)."""
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValueError("amount must be an integer number of minor units")
        if not _CURRENCY.match(self.currency):
            raise ValueError("currency must be a three-letter ISO 4217 code")

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}


class MoneySchema(Schema):
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT)
    )
    currency = fields.String(
        required=True,
        validate=validate.Regexp(_CURRENCY, error="Use a three-letter ISO 4217 code."),
    )

    @post_load
    def _validate(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            Money(data["amount"], data["currency"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return data
