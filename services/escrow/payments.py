"""The payment-provider port, and the sandbox provider behind it.

A real provider (Stripe, Adyen, ...) plugs in by implementing
:class:`PaymentProvider`. Every call carries our id for the operation
(charge id, refund id, payout id) as the provider's idempotency key, so a
retried call never charges or pays twice, and ``charge`` answers the same for
the same id, which is how recovery learns the outcome of a charge whose
answer was lost.

The sandbox keeps no state and decides by payment method, like the test
cards of real providers (:class:`Payments` injects the one the config names):

============================================  ==============================
payment method                                outcome
============================================  ==============================
``pm_card_visa``, ``pm_card_mastercard``      succeeds
``pm_card_chargeDeclined``                    declined: ``card_declined``
``pm_card_chargeDeclinedInsufficientFunds``   declined: ``insufficient_funds``
``pm_card_refundFail``                        succeeds; refunds of it are
                                              declined: ``refund_failed``
============================================  ==============================

A refund names the original charge by the provider's reference for it; the
sandbox marks the reference of a ``pm_card_refundFail`` charge, which is how
it knows, keeping no state, to decline that charge's refunds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Protocol

from nameko.extensions import DependencyProvider

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    reference: str = ""
    reason: str = ""
    message: str = ""


class PaymentProvider(Protocol):
    def charge(
        self, charge_id: str, amount: int, currency: str, payment_method: str
    ) -> ChargeResult: ...

    def refund(
        self, refund_id: str, charge_reference: str, amount: int, currency: str
    ) -> RefundResult:
        """Give ``amount`` of the charge ``charge_reference`` back to its card.
        A declined refund is an answer; a lost answer raises (and recovery asks
        again under the same ``refund_id``)."""
        ...

    def payout(self, payout_id: str, seller_id: str, amount: int, currency: str) -> str: ...


SANDBOX_METHODS = {
    "pm_card_visa": ChargeResult(True),
    "pm_card_mastercard": ChargeResult(True),
    "pm_card_chargeDeclined": ChargeResult(
        False, reason="card_declined", message="The card was declined."
    ),
    "pm_card_chargeDeclinedInsufficientFunds": ChargeResult(
        False, reason="insufficient_funds", message="The card has insufficient funds."
    ),
    "pm_card_refundFail": ChargeResult(True),
}
REFUND_FAILS = "refundfail_"
"""The sandbox's mark in the reference of a charge whose refunds it declines."""


def _reference(kind: str, operation_id: str, mark: str = "") -> str:
    return f"sandbox_{kind}_{mark}{hashlib.sha256(operation_id.encode()).hexdigest()[:24]}"


class SandboxProvider:
    def charge(
        self, charge_id: str, amount: int, currency: str, payment_method: str
    ) -> ChargeResult:
        outcome = SANDBOX_METHODS.get(payment_method)
        if outcome is None:
            return ChargeResult(
                False, reason="unknown_payment_method", message="Unknown test card."
            )
        if not outcome.succeeded:
            return outcome
        mark = REFUND_FAILS if payment_method == "pm_card_refundFail" else ""
        return ChargeResult(True, reference=_reference("ch", charge_id, mark))

    def refund(
        self, refund_id: str, charge_reference: str, amount: int, currency: str
    ) -> RefundResult:
        log.info(
            "sandbox refund",
            refund_id=refund_id,
            charge_reference=charge_reference,
            amount=amount,
            currency=currency,
        )
        if REFUND_FAILS in charge_reference:
            return RefundResult(
                False, reason="refund_failed", message="The card's issuer refused the refund."
            )
        return RefundResult(True, reference=_reference("re", refund_id))

    def payout(self, payout_id: str, seller_id: str, amount: int, currency: str) -> str:
        log.info("sandbox payout", payout_id=payout_id, amount=amount, currency=currency)
        return _reference("po", payout_id)


def provider_for(name: str) -> PaymentProvider:
    if name == "sandbox":
        return SandboxProvider()
    raise ValueError(f"unknown payment provider {name!r}; this build ships 'sandbox'")


class Payments(DependencyProvider):
    """Injects the payment provider that ``PAYMENT_PROVIDER`` names (the service's
    config, else the environment): the sandbox unless told otherwise. Tests
    give the service a fake instead."""

    def setup(self) -> None:
        name = self.container.config.get("PAYMENT_PROVIDER") or os.environ.get(
            "PAYMENT_PROVIDER", "sandbox"
        )
        self.provider = provider_for(name)

    def get_dependency(self, worker_ctx: Any) -> PaymentProvider:
        return self.provider
