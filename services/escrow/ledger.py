"""The escrow ledger's rules: double-entry movements, as pure functions.

Every movement of money is a set of postings that sum to zero, per currency.
Accounts are named strings:

* ``external:card`` - money that came in from (or went back to) buyers' cards;
  it runs negative by what the platform received.
* ``escrow:<contract>:<milestone>`` - money held for one milestone.
* ``seller:<user>`` - a seller's available balance.
* ``platform:fees`` - what the platform earned.
* ``external:payout`` - money paid out to sellers' banks.

Fee rule: the platform keeps ``fee_bps`` basis points (default 1,000 = 10%)
of each amount released to a seller, taken from the seller's side, rounded to
the nearest minor unit with halves rounded up: ``(amount * bps + 5_000) // 10_000``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Conflict, InvalidInput

CARD = "external:card"
PAYOUT = "external:payout"
FEES = "platform:fees"
DEFAULT_FEE_BPS = 1_000

Posting = tuple[str, int]  # (account, signed amount in minor units)


def escrow_account(contract_id: str, milestone_id: str) -> str:
    return f"escrow:{contract_id}:{milestone_id}"


def seller_account(seller_id: str) -> str:
    return f"seller:{seller_id}"


def refund_id(contract_id: str, milestone_id: str, cause: str) -> str:
    """The provider's refund of what a movement answering ``cause`` gave back
    from the milestone: one per milestone and cause, the same on every replay
    (so a statement's refund line names its refund without reading the log)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"refund:{contract_id}:{milestone_id}:{cause}"))


def fee_for(amount: int, fee_bps: int = DEFAULT_FEE_BPS) -> int:
    """The platform's fee on a released amount (round half up, minor units)."""
    if amount < 0 or not 0 <= fee_bps <= 10_000:
        raise ValueError("amount must be >= 0 and the fee between 0 and 10,000 bps")
    return (amount * fee_bps + 5_000) // 10_000


@dataclass
class Hold:
    """One milestone's escrow: what was funded and where it went."""

    currency: str
    funded: int = 0
    released: int = 0
    refunded: int = 0
    disputed: bool = False

    @property
    def held(self) -> int:
        return self.funded - self.released - self.refunded


@dataclass
class Ledger:
    """Balances per (account, currency) and holds per milestone, folded from movements."""

    balances: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    holds: dict[tuple[str, str], Hold] = field(default_factory=dict)

    def balance(self, account: str, currency: str) -> int:
        return self.balances.get((account, currency), 0)


def postings(movement: dict[str, Any]) -> list[Posting]:
    """The double-entry postings a recorded movement stands for."""
    kind, amount = movement["kind"], movement["amount"]
    escrow = escrow_account(movement.get("contract_id", ""), movement.get("milestone_id", ""))
    match kind:
        case "funded":
            return [(CARD, -amount), (escrow, amount)]
        case "released":
            fee = movement["fee"]
            return [
                (escrow, -amount),
                (seller_account(movement["seller_id"]), amount - fee),
                (FEES, fee),
            ]
        case "refunded":
            return [(escrow, -amount), (CARD, amount)]
        case "dispute_settled":
            to_seller, fee = movement["to_seller"], movement["fee"]
            return [
                (escrow, -amount),
                (seller_account(movement["seller_id"]), to_seller - fee),
                (FEES, fee),
                (CARD, movement["refunded"]),
            ]
        case "paid_out":
            return [(seller_account(movement["seller_id"]), -amount), (PAYOUT, amount)]
    return []


def apply(ledger: Ledger, movement: dict[str, Any]) -> Ledger:
    """Fold one movement into the ledger (mutates and returns it)."""
    currency = movement["currency"]
    for account, amount in postings(movement):
        ledger.balances[(account, currency)] += amount
    key = (movement.get("contract_id", ""), movement.get("milestone_id", ""))
    kind = movement["kind"]
    if kind == "funded":
        hold = ledger.holds.setdefault(key, Hold(currency))
        hold.funded += movement["amount"]
    elif kind == "released":
        ledger.holds[key].released += movement["amount"]
    elif kind == "refunded":
        ledger.holds[key].refunded += movement["amount"]
    elif kind == "dispute_opened":
        ledger.holds[key].disputed = True
    elif kind == "dispute_settled":
        hold = ledger.holds[key]
        hold.released += movement["to_seller"]
        hold.refunded += movement["refunded"]
        hold.disputed = False
    return ledger


# -- decisions ------------------------------------------------------------------


def _positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "amounts are whole minor units above zero", {"fields": {"amount": ["Must be > 0."]}}
        )


def _hold(ledger: Ledger, contract_id: str, milestone_id: str) -> Hold:
    hold = ledger.holds.get((contract_id, milestone_id))
    if hold is None or hold.funded == 0:
        raise Conflict("this milestone is not funded", {"reason": "not_funded"})
    return hold


def fund(
    ledger: Ledger, contract_id: str, milestone_id: str, amount: int, currency: str
) -> list[dict[str, Any]]:
    """A milestone is funded once, in full (a charge already succeeded)."""
    _positive(amount)
    existing = ledger.holds.get((contract_id, milestone_id))
    if existing is not None and existing.funded:
        raise Conflict("this milestone is already funded", {"reason": "already_funded"})
    return [
        {
            "kind": "funded",
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "amount": amount,
            "currency": currency,
        }
    ]


def release(
    ledger: Ledger,
    contract_id: str,
    milestone_id: str,
    seller_id: str,
    fee_bps: int = DEFAULT_FEE_BPS,
) -> list[dict[str, Any]]:
    """Everything still held goes to the seller, less the platform's fee."""
    hold = _hold(ledger, contract_id, milestone_id)
    if hold.disputed:
        raise Conflict(
            "this milestone is disputed: an administrator resolves it", {"reason": "disputed"}
        )
    if hold.held == 0:
        raise Conflict("nothing is held for this milestone any more", {"reason": "nothing_held"})
    amount = hold.held
    return [
        {
            "kind": "released",
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "seller_id": seller_id,
            "amount": amount,
            "fee": fee_for(amount, fee_bps),
            "currency": hold.currency,
        }
    ]


def refund(
    ledger: Ledger, contract_id: str, milestone_id: str, amount: int | None = None
) -> list[dict[str, Any]]:
    """Give back all (None) or part of what is held."""
    hold = _hold(ledger, contract_id, milestone_id)
    if hold.disputed:
        raise Conflict(
            "this milestone is disputed: an administrator resolves it", {"reason": "disputed"}
        )
    amount = hold.held if amount is None else amount
    _positive(amount)
    if amount > hold.held:
        raise Conflict(
            "cannot refund more than is held", {"reason": "exceeds_held", "held": hold.held}
        )
    return [
        {
            "kind": "refunded",
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "amount": amount,
            "currency": hold.currency,
        }
    ]


def open_dispute(ledger: Ledger, contract_id: str, milestone_id: str) -> list[dict[str, Any]]:
    hold = _hold(ledger, contract_id, milestone_id)
    if hold.disputed:
        raise Conflict("this milestone is already disputed", {"reason": "disputed"})
    if hold.held == 0:
        raise Conflict("nothing is held for this milestone any more", {"reason": "nothing_held"})
    return [
        {
            "kind": "dispute_opened",
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "amount": 0,
            "currency": hold.currency,
        }
    ]


def resolve_dispute(
    ledger: Ledger,
    contract_id: str,
    milestone_id: str,
    seller_id: str,
    to_seller: int,
    fee_bps: int = DEFAULT_FEE_BPS,
) -> list[dict[str, Any]]:
    """Split what is held: ``to_seller`` is released (less the fee), the rest
    refunded, in one movement that also lifts the freeze."""
    hold = _hold(ledger, contract_id, milestone_id)
    if not hold.disputed:
        raise Conflict("this milestone is not disputed", {"reason": "not_disputed"})
    if isinstance(to_seller, bool) or not 0 <= to_seller <= hold.held:
        raise InvalidInput(
            "the seller's share must be between 0 and what is held",
            {"fields": {"to_seller": [f"Between 0 and {hold.held}."]}},
        )
    return [
        {
            "kind": "dispute_settled",
            "contract_id": contract_id,
            "milestone_id": milestone_id,
            "seller_id": seller_id,
            "amount": hold.held,
            "to_seller": to_seller,
            "fee": fee_for(to_seller, fee_bps),
            "refunded": hold.held - to_seller,
            "currency": hold.currency,
        }
    ]


def pay_out(ledger: Ledger, seller_id: str, amount: int, currency: str) -> list[dict[str, Any]]:
    _positive(amount)
    available = ledger.balance(seller_account(seller_id), currency)
    if amount > available:
        raise Conflict(
            "the payout is more than the available balance",
            {"reason": "insufficient_balance", "available": available},
        )
    return [{"kind": "paid_out", "seller_id": seller_id, "amount": amount, "currency": currency}]


MOVEMENT_KINDS = {
    "EscrowFunded": "funded",
    "EscrowReleased": "released",
    "EscrowRefunded": "refunded",
    "EscrowFrozen": "dispute_opened",
    "EscrowDisputeSettled": "dispute_settled",
    "PayoutRequested": "paid_out",
}


def movement(event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The ledger movement an escrow event records (None for other events)."""
    kind = MOVEMENT_KINDS.get(event_type)
    return None if kind is None else {**data, "kind": kind}
