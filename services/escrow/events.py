"""The escrow service's events: its published API, and the ledger's only record.

Stream ``escrow-<contract id>`` holds every movement of one contract's money;
``payouts-<seller id>`` a seller's payouts. Each movement event carries what
its double-entry postings need (see ``services.escrow.ledger``), and money is
integer minor units with its currency. ``cause`` is the id of the event a
movement answers, which makes reacting to a redelivered event a no-op.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.schemas import ALL, registry

STREAM_CATEGORIES = ("escrow", "payouts")
"""The categories of this service's streams: no other service reads them."""


class Movement(Schema):
    contract_id = fields.String(required=True)
    milestone_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)


@registry.event("FundingRequested", published=ALL)
class FundingRequested(Schema):
    """A charge is about to be made; its outcome follows (or recovery finds it)."""

    charge_id = fields.String(required=True)
    contract_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    milestone_ids = fields.List(fields.String(), required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    payment_method = fields.String(required=True)
    invoice_id = fields.String(allow_none=True, load_default=None)
    """An hourly week's invoice (its id stands as the one milestone): charged
    once approved, and released at once."""
    attempt = fields.Integer(load_default=1)
    """Which charge of the invoice this is (a declined one is tried again)."""


@registry.event("FundingFailed", published=ALL)
class FundingFailed(Schema):
    charge_id = fields.String(required=True)
    reason = fields.String(required=True)
    message = fields.String(required=True)
    invoice_id = fields.String(allow_none=True, load_default=None)
    attempt = fields.Integer(load_default=1)


@registry.event("EscrowFunded", published=ALL)
class EscrowFunded(Movement):
    """The buyer's card was charged into escrow for one milestone."""

    charge_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    charge_reference = fields.String(load_default="")
    """The provider's reference of the charge, which its refunds name (empty
    in events recorded before refunds were sent with it)."""


@registry.event("EscrowReleased", published=ALL)
class EscrowReleased(Movement):
    """Held money went to the seller, less ``fee`` for the platform."""

    seller_id = fields.String(required=True)
    fee = fields.Integer(required=True)
    cause = fields.String(required=True)


@registry.event("EscrowRefunded", published=ALL)
class EscrowRefunded(Movement):
    buyer_id = fields.String(required=True)
    reason = fields.String(required=True)
    cause = fields.String(required=True)


@registry.event("EscrowFrozen", published=ALL)
class EscrowFrozen(Movement):
    """A dispute: nothing moves until an administrator's split."""

    cause = fields.String(required=True)


@registry.event("EscrowDisputeSettled", published=ALL)
class EscrowDisputeSettled(Movement):
    """``amount`` was held: ``to_seller`` released (less ``fee``), ``refunded`` returned."""

    seller_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    to_seller = fields.Integer(required=True)
    fee = fields.Integer(required=True)
    refunded = fields.Integer(required=True)
    cause = fields.String(required=True)


@registry.event("EscrowClosed", published=ALL)
class EscrowClosed(Schema):
    """The contract ended: a charge still running is refunded when it lands."""

    reason = fields.String(required=True)
    cause = fields.String(required=True)


@registry.event("RefundRequested", published=ALL)
class RefundRequested(Movement):
    """Money that ``EscrowRefunded`` or ``EscrowDisputeSettled`` gave back (in
    the same append) is to be returned to the card by the provider. Its id is
    derived from the contract, milestone and ``cause``, so a redelivery or a
    replay asks for the same refund; the outcome follows (or recovery finds it)."""

    refund_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    charge_id = fields.String(required=True)
    charge_reference = fields.String(required=True)
    reason = fields.String(required=True)
    cause = fields.String(required=True)


@registry.event("RefundSucceeded", published=ALL)
class RefundSucceeded(Schema):
    refund_id = fields.String(required=True)
    reference = fields.String(required=True)
    attempt = fields.Integer(load_default=1)


@registry.event("RefundFailed", published=ALL)
class RefundFailed(Schema):
    """The provider declined the refund: it stays failed until a retry succeeds."""

    refund_id = fields.String(required=True)
    reason = fields.String(required=True)
    message = fields.String(required=True)
    attempt = fields.Integer(load_default=1)


@registry.event("RefundRetried", published=ALL)
class RefundRetried(Schema):
    """Recovery asks again for a failed refund: ``attempt`` is the new attempt,
    sent under its own idempotency key (a provider answers a key's retry with
    its first answer)."""

    refund_id = fields.String(required=True)
    attempt = fields.Integer(required=True)


@registry.event("PayoutRequested", published=ALL)
class PayoutRequested(Schema):
    """Leaves the seller's balance now; the provider is asked next (``PayoutSent``)."""

    payout_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)


@registry.event("PayoutSent", published=ALL)
class PayoutSent(Schema):
    payout_id = fields.String(required=True)
    reference = fields.String(required=True)
