"""The escrow service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.api import CURRENCY, Strict
from shared.money import MAX_AMOUNT


class FundRequest(Strict):
    milestone_ids = fields.List(
        fields.UUID(), required=True, validate=validate.Length(min=1, max=20)
    )
    payment_method = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "A payment method token from the provider's client SDK. "
            "Sandbox: pm_card_visa (succeeds), pm_card_chargeDeclined, "
            "pm_card_chargeDeclinedInsufficientFunds; pm_card_refundFail (succeeds, "
            "and its refunds are declined)."
        },
    )


class FundingResponse(Schema):
    charge_id = fields.String(required=True)
    contract_id = fields.String(required=True)
    milestone_ids = fields.List(fields.String(), required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)


class PayoutRequest(Strict):
    amount = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT)
    )
    currency = fields.String(required=True, validate=CURRENCY)


class PayoutResponse(Schema):
    payout_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)
    reference = fields.String(required=True)


class CurrencyBalance(Schema):
    currency = fields.String(required=True)
    available = fields.Integer(required=True, metadata={"description": "Seller: can be paid out"})
    in_escrow = fields.Integer(
        required=True, metadata={"description": "Buyer: held for milestones"}
    )
    paid_out = fields.Integer(required=True)


class BalanceResponse(Schema):
    balances = fields.List(fields.Nested(CurrencyBalance), required=True)


class StatementLine(Schema):
    at = fields.String(required=True)
    kind = fields.String(
        required=True, metadata={"description": "charge, refund, release, fee or payout"}
    )
    description = fields.String(required=True)
    contract_id = fields.String(allow_none=True)
    milestone_id = fields.String(allow_none=True)
    amount = fields.Integer(required=True, metadata={"description": "Signed, from your side"})
    currency = fields.String(required=True)
    running_total = fields.Integer(required=True)
    refund_id = fields.String(
        allow_none=True, metadata={"description": "A refund line: the refund at the provider"}
    )
    refund_status = fields.String(
        allow_none=True,
        metadata={
            "description": "A refund line: requested, succeeded or failed at the payment "
            "provider (none for refunds recorded before refunds were tracked)"
        },
    )


class StatementResponse(Schema):
    items = fields.List(fields.Nested(StatementLine), required=True)


class StatementQuery(Strict):
    contract_id = fields.UUID(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))


class HoldResponse(Schema):
    milestone_id = fields.String(required=True)
    currency = fields.String(required=True)
    funded = fields.Integer(required=True)
    released = fields.Integer(required=True)
    refunded = fields.Integer(required=True)
    held = fields.Integer(required=True)
    disputed = fields.Boolean(required=True)


class PostingResponse(Schema):
    event_id = fields.String(required=True)
    kind = fields.String(required=True)
    account = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    milestone_id = fields.String(allow_none=True)
    at = fields.String(required=True)


class RefundResponse(Schema):
    refund_id = fields.String(required=True)
    milestone_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"description": "requested, succeeded or failed"}
    )
    attempts = fields.Integer(required=True)
    charge_reference = fields.String(
        required=True, metadata={"description": "The provider's reference of the refunded charge"}
    )
    reference = fields.String(
        allow_none=True, metadata={"description": "The provider's reference of the refund"}
    )
    failure_reason = fields.String(allow_none=True)
    requested_at = fields.String(required=True)


class ContractEscrowResponse(Schema):
    holds = fields.List(fields.Nested(HoldResponse), required=True)
    postings = fields.List(fields.Nested(PostingResponse), required=True)
    refunds = fields.List(fields.Nested(RefundResponse), required=True)
