"""Escrow's decisions, as pure functions over one contract's escrow stream.

Money moves only as events in ``escrow-<contract id>``; their order in that
stream, appended with optimistic concurrency, is what makes "released once"
true under any number of concurrent requests: the second decision is made on
a state that already contains the first.

Funding is two steps around the payment provider: ``FundingRequested``
reserves the milestones (a concurrent funder gets a 409), the charge runs with
the request's charge id as the provider's idempotency key, and the outcome is
recorded. A process that dies in between leaves a request that recovery
completes by asking the provider about that charge id.

Refunds are the same two steps the other way: the movement that gives money
back (``EscrowRefunded``, or the buyer's share of ``EscrowDisputeSettled``) is
appended with a ``RefundRequested`` naming the original charge's provider
reference and a refund id derived from what caused it; the provider is asked
under that id and its answer recorded (``RefundSucceeded`` / ``RefundFailed``).
A failed refund is retried (``RefundRetried``) under a key of its own per
attempt, a bounded number of times.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from services.escrow import ledger as L
from services.escrow.ledger import movement
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]

# -- the contract, as contracts' events tell it ---------------------------------------


@dataclass(frozen=True)
class ContractTerms:
    contract_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""
    status: str = ""
    currency: str = ""
    amounts: dict[str, int] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    offer_version: int = 0
    """The latest offer version escrow learned, and the one the seller accepted:
    while they differ, the terms escrow holds are not yet the accepted ones."""
    accepted_version: int = 0
    payment_method: str = ""
    """An hourly contract's card, charged for each approved week."""

    def settled_for(self, milestone_ids: list[str]) -> bool:
        """Known as accepted, on the accepted version, with these milestones."""
        if self.status in ("", "offered"):
            return False
        if self.status == "active" and self.accepted_version != self.offer_version:
            return False
        return all(m in self.amounts or m in self.removed for m in milestone_ids)


CONTRACT_FACTS = (
    "OfferSent",
    "OfferRevised",
    "OfferDeclined",
    "OfferWithdrawn",
    "OfferExpired",
    "ContractStarted",
    "ContractCompleted",
)
"""Contracts' published events escrow learns for ``evolve_contract`` (besides
``ContractCancelled`` and ``MilestoneChangeAccepted``, learned where they act)."""


def evolve_contract(state: ContractTerms, event: EventView) -> ContractTerms:
    data = event.data
    match event.type:
        case "OfferSent" | "OfferRevised":
            terms = data["terms"]
            return replace(
                state,
                contract_id=data.get("contract_id", state.contract_id),
                buyer_id=data.get("buyer_id", state.buyer_id),
                seller_id=data.get("seller_id", state.seller_id),
                status="offered",
                offer_version=int(data.get("version", 1)),
                currency=terms["currency"],
                amounts={m["milestone_id"]: m["amount"] for m in terms["milestones"]},
                payment_method=(terms.get("hourly") or {}).get("payment_method", ""),
            )
        case "ContractStarted":
            return replace(state, status="active", accepted_version=int(data["offer_version"]))
        case "MilestoneChangeAccepted":
            change = data["change"]
            if change["action"] == "remove":
                return replace(state, removed=state.removed | {change["milestone_id"]})
            m = change["milestone"]
            return replace(state, amounts={**state.amounts, m["milestone_id"]: m["amount"]})
        case "ContractCompleted" | "ContractCancelled":
            return replace(state, status=event.type.removeprefix("Contract").lower())
        case "OfferDeclined" | "OfferWithdrawn" | "OfferExpired":
            return replace(state, status=event.type.removeprefix("Offer").lower())
    return state


# -- one contract's escrow -------------------------------------------------------------


@dataclass
class Charge:
    charge_id: str
    milestone_ids: list[str]
    amount: int
    currency: str
    payment_method: str
    buyer_id: str
    status: str = "requested"  # requested, succeeded, failed
    reason: str = ""
    message: str = ""
    invoice_id: str | None = None
    attempt: int = 1
    reference: str = ""
    """The provider's reference, once charged (what its refunds name)."""


@dataclass
class Refund:
    refund_id: str
    milestone_id: str
    amount: int
    currency: str
    charge_id: str
    charge_reference: str
    status: str = "requested"  # requested, succeeded, failed
    attempt: int = 1
    reference: str = ""
    reason: str = ""
    message: str = ""

    @property
    def key(self) -> str:
        """The provider's idempotency key for this attempt: the refund id, then
        one derived from it per retry (a provider answers a key's repeat with
        its first answer, so a declined key would stay declined)."""
        return self.refund_id if self.attempt == 1 else f"{self.refund_id}:{self.attempt}"


DEFAULT_REFUND_ATTEMPTS = 5


@dataclass
class Escrow:
    """Folded from ``escrow-<contract>``. Mutable because a fold builds it from
    scratch each time; decisions never change it."""

    ledger: L.Ledger = field(default_factory=L.Ledger)
    charges: dict[str, Charge] = field(default_factory=dict)
    causes: set[str] = field(default_factory=set)
    closed: bool = False
    refunds: dict[str, Refund] = field(default_factory=dict)
    funded_by: dict[str, str] = field(default_factory=dict)
    """Milestone id -> the charge that funded it."""

    def charging(self, milestone_id: str) -> Charge | None:
        return next(
            (
                c
                for c in self.charges.values()
                if c.status == "requested" and milestone_id in c.milestone_ids
            ),
            None,
        )


def evolve(state: Escrow | None, event: EventView) -> Escrow:
    state = state or Escrow()
    data = event.data
    if "cause" in data:
        state.causes.add(data["cause"])
    match event.type:
        case "FundingRequested":
            state.charges[data["charge_id"]] = Charge(
                data["charge_id"],
                list(data["milestone_ids"]),
                data["amount"],
                data["currency"],
                data["payment_method"],
                data["buyer_id"],
                invoice_id=data.get("invoice_id"),
                attempt=int(data.get("attempt") or 1),
            )
        case "FundingFailed":
            charge = state.charges[data["charge_id"]]
            charge.status, charge.reason, charge.message = "failed", data["reason"], data["message"]
        case "EscrowFunded":
            charge = state.charges[data["charge_id"]]
            charge.status, charge.reference = "succeeded", data.get("charge_reference") or ""
            state.funded_by[data["milestone_id"]] = data["charge_id"]
        case "EscrowClosed":
            state.closed = True
        case "RefundRequested":
            state.refunds[data["refund_id"]] = Refund(
                data["refund_id"],
                data["milestone_id"],
                data["amount"],
                data["currency"],
                data["charge_id"],
                data["charge_reference"],
            )
        case "RefundSucceeded":
            refund = state.refunds[data["refund_id"]]
            refund.status, refund.reference = "succeeded", data["reference"]
        case "RefundFailed":
            refund = state.refunds[data["refund_id"]]
            refund.status, refund.reason, refund.message = "failed", data["reason"], data["message"]
        case "RefundRetried":
            refund = state.refunds[data["refund_id"]]
            refund.status, refund.attempt = "requested", int(data["attempt"])
    moved = movement(event.type, data)
    if moved is not None:
        L.apply(state.ledger, moved)
    return state


def _funded(state: Escrow, contract_id: str, milestone_id: str) -> bool:
    hold = state.ledger.holds.get((contract_id, milestone_id))
    return hold is not None and hold.funded > 0


def request_funding(
    state: Escrow,
    contract: ContractTerms,
    actor: str,
    milestone_ids: list[str],
    payment_method: str,
    charge_id: str,
) -> list[EventSpec]:
    """Reserve the milestones for one charge. A retry with the same charge id
    (the same Idempotency-Key) records nothing new."""
    if charge_id in state.charges:
        return []
    if not contract.contract_id:
        raise NotFound("no such contract")
    if actor != contract.buyer_id:
        raise Forbidden("only the contract's buyer funds its milestones")
    if contract.status != "active" or state.closed:
        raise Conflict(f"the contract is {contract.status}", {"reason": "wrong_state"})
    wanted = list(dict.fromkeys(milestone_ids))
    if not wanted:
        raise InvalidInput(
            "name the milestones to fund", {"fields": {"milestone_ids": ["Required."]}}
        )
    for mid in wanted:
        if mid not in contract.amounts or mid in contract.removed:
            raise NotFound("no such milestone", {"milestone_id": mid})
        if _funded(state, contract.contract_id, mid):
            raise Conflict(
                "this milestone is already funded",
                {"reason": "already_funded", "milestone_id": mid},
            )
        if state.charging(mid) is not None:
            raise Conflict(
                "a payment for this milestone is in progress",
                {"reason": "funding_in_progress", "milestone_id": mid},
            )
    return [
        (
            "FundingRequested",
            {
                "charge_id": charge_id,
                "contract_id": contract.contract_id,
                "buyer_id": contract.buyer_id,
                "milestone_ids": wanted,
                "amount": sum(contract.amounts[m] for m in wanted),
                "currency": contract.currency,
                "payment_method": payment_method,
            },
        )
    ]


def request_invoice_charge(
    state: Escrow,
    contract: ContractTerms,
    invoice_id: str,
    amount: int,
    charge_id: str,
    attempt: int = 1,
    payment_method: str | None = None,
) -> list[EventSpec]:
    """An hourly week's invoice was approved (or a dispute granted the seller
    ``amount`` of it): charge the contract's card. Once per charge id, which is
    derived from the invoice, so a redelivery or a replay charges nothing more."""
    if charge_id in state.charges or amount <= 0:
        return []
    return [
        (
            "FundingRequested",
            {
                "charge_id": charge_id,
                "contract_id": contract.contract_id,
                "buyer_id": contract.buyer_id,
                "milestone_ids": [invoice_id],
                "amount": amount,
                "currency": contract.currency,
                "payment_method": payment_method or contract.payment_method,
                "invoice_id": invoice_id,
                "attempt": attempt,
            },
        )
    ]


def _invoice_charged(
    state: Escrow,
    contract: ContractTerms,
    charge: Charge,
    invoice_id: str,
    fee_bps: int,
    reference: str,
) -> list[EventSpec]:
    """An invoice's charge came in: into escrow, and straight on to the seller
    less the fee (the review period is over), two movements of the ledger."""
    ledger = copy.deepcopy(state.ledger)
    (funded,) = L.fund(ledger, contract.contract_id, invoice_id, charge.amount, charge.currency)
    L.apply(ledger, funded)
    (released,) = L.release(ledger, contract.contract_id, invoice_id, contract.seller_id, fee_bps)
    return [
        (
            "EscrowFunded",
            {
                **_without_kind(funded),
                "charge_id": charge.charge_id,
                "buyer_id": charge.buyer_id,
                "charge_reference": reference,
            },
        ),
        ("EscrowReleased", {**_without_kind(released), "cause": charge.charge_id}),
    ]


def record_charge(
    state: Escrow,
    contract: ContractTerms,
    charge_id: str,
    succeeded: bool,
    reason: str = "",
    message: str = "",
    fee_bps: int = L.DEFAULT_FEE_BPS,
    reference: str = "",
) -> list[EventSpec]:
    """The provider's answer (``reference``: its id for the charge). Money
    charged for a contract that ended (or a milestone removed) meanwhile goes
    straight back, refunded against this charge. An invoice's charge is
    released to the seller at once."""
    charge = state.charges.get(charge_id)
    if charge is None or charge.status != "requested":
        return []
    if not succeeded:
        failed: dict[str, Any] = {"charge_id": charge_id, "reason": reason, "message": message}
        if charge.invoice_id is not None:
            failed = {**failed, "invoice_id": charge.invoice_id, "attempt": charge.attempt}
        return [("FundingFailed", failed)]
    if charge.invoice_id is not None:
        return _invoice_charged(state, contract, charge, charge.invoice_id, fee_bps, reference)
    events: list[EventSpec] = []
    for mid in charge.milestone_ids:
        common = {
            "contract_id": contract.contract_id,
            "milestone_id": mid,
            "amount": contract.amounts[mid],
            "currency": charge.currency,
            "buyer_id": charge.buyer_id,
        }
        funded = {**common, "charge_id": charge_id, "charge_reference": reference}
        events.append(("EscrowFunded", funded))
        if state.closed or mid in contract.removed:
            why = "milestone removed" if mid in contract.removed else "contract ended"
            refunded = {**common, "reason": why, "cause": charge_id}
            events.append(("EscrowRefunded", refunded))
            events.append(_refund_requested(refunded, charge_id, reference))
    return events


def release(
    state: Escrow, contract: ContractTerms, milestone_id: str, cause: str, fee_bps: int
) -> list[EventSpec]:
    """On the milestone's approval. Nothing if this approval was handled, or
    nothing is held (released already, or frozen: the dispute decides)."""
    if cause in state.causes:
        return []
    try:
        (moved,) = L.release(
            state.ledger, contract.contract_id, milestone_id, contract.seller_id, fee_bps
        )
    except Conflict:
        return []
    return [("EscrowReleased", {**_without_kind(moved), "cause": cause})]


def freeze(
    state: Escrow, contract: ContractTerms, milestone_id: str, cause: str
) -> list[EventSpec]:
    if cause in state.causes:
        return []
    try:
        (moved,) = L.open_dispute(state.ledger, contract.contract_id, milestone_id)
    except Conflict:
        return []
    return [("EscrowFrozen", {**_without_kind(moved), "cause": cause})]


def settle(
    state: Escrow,
    contract: ContractTerms,
    milestone_id: str,
    to_seller: int,
    cause: str,
    fee_bps: int,
) -> list[EventSpec]:
    """An administrator's split; freezes first if the dispute's notice is late."""
    if cause in state.causes:
        return []
    hold = state.ledger.holds.get((contract.contract_id, milestone_id))
    if hold is None or hold.held == 0:
        return []
    ledger, events = state.ledger, list[EventSpec]()
    if not hold.disputed:
        events = freeze(state, contract, milestone_id, f"{cause}:freeze")
        ledger = copy.deepcopy(state.ledger)
        L.apply(ledger, {**events[0][1], "kind": "dispute_opened"})
    (moved,) = L.resolve_dispute(
        ledger,
        contract.contract_id,
        milestone_id,
        contract.seller_id,
        min(to_seller, hold.held),
        fee_bps,
    )
    settled = {**_without_kind(moved), "buyer_id": contract.buyer_id, "cause": cause}
    events.append(("EscrowDisputeSettled", settled))
    if settled["refunded"] > 0:
        share = {**settled, "amount": settled["refunded"], "reason": "dispute settled"}
        events.append(_refund_of_hold(state, share))
    return events


def refund_all(
    state: Escrow, contract: ContractTerms, milestone_ids: list[str], reason: str, cause: str
) -> list[EventSpec]:
    """Give back what the named milestones hold (cancellation, removal), and
    close the escrow if the contract ended."""
    if cause in state.causes:
        return []
    events: list[EventSpec] = []
    for mid in milestone_ids:
        try:
            (moved,) = L.refund(state.ledger, contract.contract_id, mid)
        except Conflict:
            continue
        refunded = {
            **_without_kind(moved),
            "buyer_id": contract.buyer_id,
            "reason": reason,
            "cause": cause,
        }
        events.append(("EscrowRefunded", refunded))
        events.append(_refund_of_hold(state, refunded))
    if contract.status in ("cancelled", "completed") and not state.closed:
        events.append(("EscrowClosed", {"reason": f"contract {contract.status}", "cause": cause}))
    return events


def _refund_requested(refunded: dict[str, Any], charge_id: str, charge_reference: str) -> EventSpec:
    """The provider's refund of what a movement (``refunded``) gave back."""
    contract_id, milestone_id, cause = (
        refunded["contract_id"],
        refunded["milestone_id"],
        refunded["cause"],
    )
    return (
        "RefundRequested",
        {
            "refund_id": L.refund_id(contract_id, milestone_id, cause),
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "amount": refunded["amount"],
            "currency": refunded["currency"],
            "buyer_id": refunded["buyer_id"],
            "charge_id": charge_id,
            "charge_reference": charge_reference,
            "reason": refunded["reason"],
            "cause": cause,
        },
    )


def _refund_of_hold(state: Escrow, refunded: dict[str, Any]) -> EventSpec:
    """Against the charge that funded the milestone."""
    charge_id = state.funded_by.get(refunded["milestone_id"], "")
    charge = state.charges.get(charge_id)
    return _refund_requested(refunded, charge_id, charge.reference if charge else "")


def record_refund(
    state: Escrow,
    refund_id: str,
    attempt: int,
    succeeded: bool,
    reference: str = "",
    reason: str = "",
    message: str = "",
) -> list[EventSpec]:
    """The provider's answer to one attempt; nothing if it was recorded (a
    redelivery, or recovery racing the request that asked)."""
    refund = state.refunds.get(refund_id)
    if refund is None or refund.status != "requested" or refund.attempt != attempt:
        return []
    if succeeded:
        return [
            (
                "RefundSucceeded",
                {"refund_id": refund_id, "reference": reference, "attempt": attempt},
            )
        ]
    failed = {"refund_id": refund_id, "reason": reason, "message": message, "attempt": attempt}
    return [("RefundFailed", failed)]


def retry_refund(
    state: Escrow, refund_id: str, max_attempts: int = DEFAULT_REFUND_ATTEMPTS
) -> list[EventSpec]:
    """Ask again for a failed refund, until ``max_attempts`` were made; then it
    stays failed, for an operator."""
    refund = state.refunds.get(refund_id)
    if refund is None or refund.status != "failed" or refund.attempt >= max_attempts:
        return []
    return [("RefundRetried", {"refund_id": refund_id, "attempt": refund.attempt + 1})]


def _without_kind(moved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in moved.items() if k != "kind"}


# -- payouts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Payouts:
    """Folded from ``payouts-<seller>``: totals requested per currency, every
    request by id, and which ones the provider has confirmed."""

    requested: dict[str, int] = field(default_factory=dict)
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: frozenset[str] = frozenset()


def evolve_payouts(state: Payouts, event: EventView) -> Payouts:
    data = event.data
    if event.type == "PayoutRequested":
        total = state.requested.get(data["currency"], 0) + data["amount"]
        return replace(
            state,
            requested={**state.requested, data["currency"]: total},
            payouts={**state.payouts, data["payout_id"]: data},
        )
    if event.type == "PayoutSent":
        return replace(state, sent=state.sent | {data["payout_id"]})
    return state


def request_payout(
    state: Payouts, credited: int, seller_id: str, payout_id: str, amount: int, currency: str
) -> list[EventSpec]:
    """``credited``: what releases gave the seller in ``currency``, from the
    escrow read model. A lagging read model only undercounts it, so a payout is
    never more than the seller has; concurrent payouts serialise on the stream."""
    ledger = L.Ledger()
    balance = credited - state.requested.get(currency, 0)
    ledger.balances[(L.seller_account(seller_id), currency)] = balance
    (moved,) = L.pay_out(ledger, seller_id, amount, currency)
    return [
        (
            "PayoutRequested",
            {
                "payout_id": payout_id,
                "seller_id": seller_id,
                "amount": moved["amount"],
                "currency": currency,
            },
        )
    ]


def payout_sent(state: Payouts, payout_id: str, reference: str) -> list[EventSpec]:
    if payout_id not in state.payouts or payout_id in state.sent:
        return []
    return [("PayoutSent", {"payout_id": payout_id, "reference": reference})]
