"""EscrowService's entrypoints on the embedded event store, with a fake payment
provider that records what it is asked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.escrow import ledger as L
from services.escrow import views
from services.escrow.payments import SANDBOX_METHODS, ChargeResult, RefundResult, SandboxProvider
from services.escrow.service import EscrowService
from shared.errors import Conflict, PaymentFailed
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())
DECLINED = ChargeResult(False, reason="card_declined", message="The card was declined.")
RECOVERY_AGE = timedelta(seconds=90)
"""Past the recovery age (60 s), with room: the store stamps events with the real time,
the harness's clock starts at the harness's creation, and CI's machine may be slow."""


@dataclass
class FakeProvider:
    """Answers like the sandbox (``pm_declined`` is declined), and remembers each call."""

    charges: list[tuple[str, int, str, str]] = field(default_factory=list)
    payouts: list[tuple[str, str, int, str]] = field(default_factory=list)
    refunds: list[tuple[str, str, int, str]] = field(default_factory=list)
    fail_next_charge: bool = False
    decline_refunds: int = 0
    """How many of the next refunds are declined."""

    def charge(
        self, charge_id: str, amount: int, currency: str, payment_method: str
    ) -> ChargeResult:
        self.charges.append((charge_id, amount, currency, payment_method))
        if self.fail_next_charge:
            self.fail_next_charge = False
            raise ConnectionError("the provider's answer was lost")
        if payment_method == "pm_declined":
            return DECLINED
        method = payment_method if payment_method in SANDBOX_METHODS else "pm_card_visa"
        return SandboxProvider().charge(charge_id, amount, currency, method)

    def refund(
        self, refund_id: str, charge_reference: str, amount: int, currency: str
    ) -> RefundResult:
        self.refunds.append((refund_id, charge_reference, amount, currency))
        if self.decline_refunds:
            self.decline_refunds -= 1
            return RefundResult(False, reason="refund_failed", message="Refused.")
        return SandboxProvider().refund(refund_id, charge_reference, amount, currency)

    def payout(self, payout_id: str, seller_id: str, amount: int, currency: str) -> str:
        self.payouts.append((payout_id, seller_id, amount, currency))
        return f"po_{payout_id}"


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def h(tmp_path: Path, provider: FakeProvider) -> ServiceHarness:
    config = {
        "ESCROW_FEE_BPS": 1000,
        "ESCROW_FUNDING_RECOVERY_SECONDS": 60,
        "ESCROW_REFUND_ATTEMPTS": 3,
    }
    return ServiceHarness(EscrowService, tmp_path, config, provider=provider)


@dataclass(frozen=True)
class Deal:
    contract_id: str
    milestones: dict[str, int]

    @property
    def stream(self) -> str:
        return f"contract-{self.contract_id}"


def active_contract(h: ServiceHarness, amounts: tuple[int, ...] = (50_000, 30_000)) -> Deal:
    """A started contract, as contracts' own events tell it (the one place this
    test sets up another service's entity)."""
    contract_id = str(uuid.uuid4())
    milestones = {str(uuid.uuid4()): amount for amount in amounts}
    terms = {
        "currency": "USD",
        "scope": "a landing page",
        "milestones": [
            {
                "milestone_id": mid,
                "title": f"part {n}",
                "amount": amount,
                "due_date": h.clock.today() + timedelta(days=30),
                "revision_limit": 2,
            }
            for n, (mid, amount) in enumerate(milestones.items())
        ],
    }
    parties = {
        "contract_id": contract_id,
        "project_id": str(uuid.uuid4()),
        "proposal_id": str(uuid.uuid4()),
        "buyer_id": BUYER,
        "seller_id": SELLER,
    }
    h.append(
        f"contract-{contract_id}",
        [
            ("OfferSent", {**parties, "review_seconds": 86_400, "terms": terms}),
            ("ContractStarted", parties),
        ],
    )
    return Deal(contract_id, milestones)


def fund(h: ServiceHarness, deal: Deal, key: str, method: str = "pm_card_visa") -> dict[str, Any]:
    request = {"milestone_ids": list(deal.milestones), "payment_method": method}
    return h.worker(BUYER, key=key).fund_milestones(deal.contract_id, request, key)


def test_funding_charges_the_provider_once_with_the_charge_id_as_key(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h)
    funded = fund(h, deal, "key-1")
    assert (funded["status"], funded["amount"], funded["currency"]) == ("succeeded", 80_000, "USD")
    assert provider.charges == [(funded["charge_id"], 80_000, "USD", "pm_card_visa")]
    assert fund(h, deal, "key-1") == funded  # the client's retry
    assert len(provider.charges) == 1
    escrow = f"escrow-{deal.contract_id}"
    assert h.types(escrow) == ["FundingRequested", "EscrowFunded", "EscrowFunded"]
    with pytest.raises(Conflict):
        fund(h, deal, "key-2")  # another request for the same milestones


def test_a_declined_payment_is_recorded_and_raises_payment_failed(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h)
    with pytest.raises(PaymentFailed) as caught:
        fund(h, deal, "key-1", method="pm_declined")
    assert caught.value.details["reason"] == "card_declined"
    with pytest.raises(PaymentFailed):
        fund(h, deal, "key-1", method="pm_declined")  # the retry answers the same
    assert len(provider.charges) == 1
    assert h.types(f"escrow-{deal.contract_id}") == ["FundingRequested", "FundingFailed"]
    assert fund(h, deal, "key-2")["status"] == "succeeded"  # another card, another charge


def test_recovery_asks_the_provider_about_a_charge_whose_answer_was_lost(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h)
    provider.fail_next_charge = True
    with pytest.raises(ConnectionError):
        fund(h, deal, "key-1")
    h.catch_up()
    assert h.worker().recover() == 0  # not old enough yet, by the clock
    h.clock.advance(RECOVERY_AGE)
    assert h.worker().recover() == 1
    (first, second) = provider.charges
    assert first == second  # the same charge id: the provider's idempotency key
    assert h.types(f"escrow-{deal.contract_id}")[-1] == "EscrowFunded"


def test_an_approval_releases_once_and_the_seller_is_paid_out_once(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h, (50_000,))
    fund(h, deal, "key-1")
    (milestone_id,) = deal.milestones
    approved = {
        "milestone_id": milestone_id,
        "automatic": False,
        "amount": 50_000,
        "currency": "USD",
        "seller_id": SELLER,
    }
    h.append(deal.stream, [("MilestoneApproved", approved)], actor=BUYER)
    message = h.message(deal.stream, "MilestoneApproved")
    h.worker().on_milestone_approved(message)
    h.worker().on_milestone_approved(message)  # redelivered
    assert h.types(f"escrow-{deal.contract_id}").count("EscrowReleased") == 1
    h.catch_up()
    request = {"amount": 45_000, "currency": "USD"}  # 10% fee
    paid = h.worker(SELLER, key="p1").request_payout(request, "p1")
    assert h.worker(SELLER, key="p1").request_payout(request, "p1") == paid
    assert provider.payouts == [(paid["payout_id"], SELLER, 45_000, "USD")] * 2
    assert h.types(f"payouts-{SELLER}") == ["PayoutRequested", "PayoutSent"]
    with pytest.raises(Conflict):
        h.worker(SELLER, key="p2").request_payout({"amount": 1, "currency": "USD"}, "p2")


def hourly_contract(h: ServiceHarness) -> str:
    contract_id = str(uuid.uuid4())
    terms = {
        "currency": "USD",
        "scope": "support by the hour",
        "milestones": [],
        "hourly": {
            "rate": 6_000,
            "weekly_limit": 10,
            "start_date": h.clock.today(),
            "payment_method": "pm_card_visa",
        },
    }
    parties = {
        "contract_id": contract_id,
        "project_id": str(uuid.uuid4()),
        "proposal_id": str(uuid.uuid4()),
        "buyer_id": BUYER,
        "seller_id": SELLER,
    }
    h.append(
        f"contract-{contract_id}",
        [
            ("OfferSent", {**parties, "review_seconds": 86_400, "terms": terms}),
            ("ContractStarted", parties),
        ],
    )
    return contract_id


def test_an_approved_week_is_charged_to_the_contracts_card_and_released_once(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    contract_id = hourly_contract(h)
    invoice = str(uuid.uuid4())
    approved = {
        "invoice_id": invoice,
        "week": 0,
        "amount": 12_345,
        "currency": "USD",
        "seller_id": SELLER,
        "automatic": True,
    }
    h.append(f"contract-{contract_id}", [("InvoiceApproved", approved)])
    message = h.message(f"contract-{contract_id}", "InvoiceApproved")
    h.worker().on_invoice_approved(message)
    h.worker().on_invoice_approved(message)  # redelivered
    escrow = f"escrow-{contract_id}"
    assert h.types(escrow) == ["FundingRequested", "EscrowFunded", "EscrowReleased"]
    assert [c[1:] for c in provider.charges] == [(12_345, "USD", "pm_card_visa")]
    released = h.recorded(escrow)[-1].data
    assert (released["amount"], released["fee"], released["milestone_id"]) == (
        12_345,
        1_235,
        invoice,
    )
    # A dispute's share of another week: only the share is charged.
    other = str(uuid.uuid4())
    resolved = {
        "invoice_id": other,
        "week": 1,
        "amount": 10_000,
        "to_seller": 4_000,
        "resolved_by": "admin",
    }
    h.append(f"contract-{contract_id}", [("InvoiceDisputeResolved", resolved)])
    h.worker().on_invoice_dispute_resolved(
        h.message(f"contract-{contract_id}", "InvoiceDisputeResolved")
    )
    assert h.recorded(escrow)[-2].data["amount"] == 4_000
    h.catch_up()
    assert h.worker().recover() == 0

    with h.engine.connect() as conn:
        lines = views.statement(conn, SELLER, contract_id)
    assert [(x["description"], x["amount"]) for x in lines] == [
        ("Hourly week paid", 12_345),
        ("Platform fee", -1_235),
        ("Hourly week paid", 4_000),
        ("Platform fee", -400),
    ]


def test_a_declined_week_is_told_to_contracts_and_charged_to_the_next_card(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    contract_id = hourly_contract(h)
    invoice = str(uuid.uuid4())
    retried = {
        "invoice_id": invoice,
        "week": 0,
        "attempt": 2,
        "amount": 6_000,
        "payment_method": "pm_declined",
    }
    h.append(f"contract-{contract_id}", [("InvoiceChargeRetried", retried)])
    h.worker().on_invoice_charge_retried(
        h.message(f"contract-{contract_id}", "InvoiceChargeRetried")
    )
    escrow = f"escrow-{contract_id}"
    assert h.types(escrow) == ["FundingRequested", "FundingFailed"]
    failed = h.recorded(escrow)[-1].data
    assert (failed["invoice_id"], failed["attempt"]) == (invoice, 2)
    again = {**retried, "attempt": 3, "payment_method": "pm_card_visa"}
    h.append(f"contract-{contract_id}", [("InvoiceChargeRetried", again)])
    h.worker().on_invoice_charge_retried(
        h.message(f"contract-{contract_id}", "InvoiceChargeRetried")
    )
    assert h.types(escrow)[2:] == ["FundingRequested", "EscrowFunded", "EscrowReleased"]
    assert [c[3] for c in provider.charges] == ["pm_declined", "pm_card_visa"]


# -- refunds ---------------------------------------------------------------------------


def charge_reference(charge_id: str, method: str = "pm_card_visa") -> str:
    return SandboxProvider().charge(charge_id, 1, "USD", method).reference


def cancel(h: ServiceHarness, deal: Deal, refund: list[str]) -> dict[str, Any]:
    """Contracts' ``ContractCancelled``, as escrow receives it."""
    cancelled = {
        "contract_id": deal.contract_id,
        "buyer_id": BUYER,
        "seller_id": SELLER,
        "currency": "USD",
        "total_amount": sum(deal.milestones.values()),
        "total_paid": 0,
        "on_time": True,
        "reason": "plans changed",
        "by_agreement": True,
        "cancelled_by": BUYER,
        "refund_milestone_ids": refund,
    }
    h.append(deal.stream, [("ContractCancelled", cancelled)], actor=BUYER)
    return h.message(deal.stream, "ContractCancelled")


def cause_of(h: ServiceHarness, deal: Deal, event_type: str) -> str:
    return str(next(e for e in reversed(h.recorded(deal.stream)) if e.type == event_type).event_id)


def refund_statuses(h: ServiceHarness, deal: Deal) -> list[tuple[str | None, int]]:
    h.catch_up()
    with h.engine.connect() as conn:
        lines = views.statement(conn, BUYER, deal.contract_id)
    return [(x["refund_status"], x["amount"]) for x in lines if x["kind"] == "refund"]


def test_a_cancellation_refund_is_sent_once_with_the_charges_reference_and_a_derived_id(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h)
    funded = fund(h, deal, "key-1")
    message = cancel(h, deal, list(deal.milestones))
    h.worker().on_contract_cancelled(message)
    h.worker().on_contract_cancelled(message)  # redelivered
    cause = cause_of(h, deal, "ContractCancelled")
    reference = charge_reference(funded["charge_id"])
    assert provider.refunds == [
        (L.refund_id(deal.contract_id, mid, cause), reference, amount, "USD")
        for mid, amount in deal.milestones.items()
    ]
    escrow = f"escrow-{deal.contract_id}"
    assert h.types(escrow)[3:] == [
        "EscrowRefunded",
        "RefundRequested",
        "EscrowRefunded",
        "RefundRequested",
        "EscrowClosed",
        "RefundSucceeded",
        "RefundSucceeded",
    ]
    assert refund_statuses(h, deal) == [("succeeded", 50_000), ("succeeded", 30_000)]
    with h.engine.connect() as conn:
        refunds = views.contract_escrow(conn, deal.contract_id)["refunds"]
    assert {(r["status"], r["charge_reference"], r["attempts"]) for r in refunds} == {
        ("succeeded", reference, 1)
    }
    assert all(r["reference"].startswith("sandbox_re_") for r in refunds)
    h.clock.advance(RECOVERY_AGE)
    assert h.worker().recover() == 0
    assert len(provider.refunds) == 2


def test_a_refund_whose_outcome_was_not_recorded_is_completed_by_recovery(
    h: ServiceHarness, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider refunded, then the process died before the append."""
    deal = active_contract(h, (50_000,))
    fund(h, deal, "key-1")
    append = h.store.append

    def dies_recording_the_outcome(stream: str, events: Any, *args: Any) -> Any:
        if any(e.type == "RefundSucceeded" for e in events):
            raise ConnectionError("the process died")
        return append(stream, events, *args)

    monkeypatch.setattr(h.store, "append", dies_recording_the_outcome)
    h.worker().on_contract_cancelled(cancel(h, deal, list(deal.milestones)))
    monkeypatch.undo()
    escrow = f"escrow-{deal.contract_id}"
    assert h.types(escrow)[-2:] == ["RefundRequested", "EscrowClosed"]
    assert refund_statuses(h, deal) == [("requested", 50_000)]
    assert h.worker().recover() == 0  # not old enough yet, by the clock
    h.clock.advance(RECOVERY_AGE)
    assert h.worker().recover() == 1
    first, second = provider.refunds
    assert first == second  # the same key: the provider refunds once
    assert h.types(escrow)[-1] == "RefundSucceeded"
    assert refund_statuses(h, deal) == [("succeeded", 50_000)]
    assert h.worker().recover() == 0


def test_a_declined_refund_is_recorded_and_retried_until_it_succeeds(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h, (50_000,))
    fund(h, deal, "key-1")
    provider.decline_refunds = 1
    h.worker().on_contract_cancelled(cancel(h, deal, list(deal.milestones)))
    escrow = f"escrow-{deal.contract_id}"
    assert h.types(escrow)[-1] == "RefundFailed"
    assert refund_statuses(h, deal) == [("failed", 50_000)]
    assert h.worker().recover() == 0  # retried after the recovery interval
    h.clock.advance(RECOVERY_AGE)
    assert h.worker().recover() == 1
    (rid, *_), (retry_key, *_) = provider.refunds
    assert retry_key == f"{rid}:2"  # its own key: a provider repeats a key's first answer
    assert h.types(escrow)[-2:] == ["RefundRetried", "RefundSucceeded"]
    assert refund_statuses(h, deal) == [("succeeded", 50_000)]


def test_a_refund_the_provider_keeps_declining_stays_failed_after_its_attempts(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    """The sandbox declines refunds of a ``pm_card_refundFail`` charge."""
    deal = active_contract(h, (50_000,))
    funded = fund(h, deal, "key-1", method="pm_card_refundFail")
    h.worker().on_contract_cancelled(cancel(h, deal, list(deal.milestones)))
    for _ in range(4):
        h.catch_up()
        h.clock.advance(RECOVERY_AGE)
        h.worker().recover()
    assert len(provider.refunds) == 3  # ESCROW_REFUND_ATTEMPTS
    assert {r[1] for r in provider.refunds} == {
        charge_reference(funded["charge_id"], "pm_card_refundFail")
    }
    assert refund_statuses(h, deal) == [("failed", 50_000)]
    with h.engine.connect() as conn:
        (refund,) = views.contract_escrow(conn, deal.contract_id)["refunds"]
    assert (refund["status"], refund["attempts"], refund["failure_reason"]) == (
        "failed",
        3,
        "refund_failed",
    )


def test_a_dispute_split_refunds_the_buyers_share(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h, (50_000,))
    funded = fund(h, deal, "key-1")
    (mid,) = deal.milestones
    h.append(
        deal.stream,
        [("MilestoneDisputed", {"milestone_id": mid, "opened_by": BUYER, "reason": "late"})],
    )
    h.worker().on_milestone_disputed(h.message(deal.stream, "MilestoneDisputed"))
    admin = str(uuid.uuid4())
    resolved = {"milestone_id": mid, "to_seller": 20_000, "resolved_by": admin, "note": ""}
    h.append(deal.stream, [("DisputeResolved", resolved)], actor=admin)
    message = h.message(deal.stream, "DisputeResolved")
    h.worker().on_dispute_resolved(message)
    h.worker().on_dispute_resolved(message)  # redelivered
    cause = cause_of(h, deal, "DisputeResolved")
    assert provider.refunds == [
        (
            L.refund_id(deal.contract_id, mid, cause),
            charge_reference(funded["charge_id"]),
            30_000,
            "USD",
        )
    ]
    assert refund_statuses(h, deal) == [("succeeded", 30_000)]


def test_a_charge_landing_after_the_contract_ended_is_refunded_against_it(
    h: ServiceHarness, provider: FakeProvider
) -> None:
    deal = active_contract(h, (50_000,))
    provider.fail_next_charge = True
    with pytest.raises(ConnectionError):
        fund(h, deal, "key-1")
    h.worker().on_contract_cancelled(cancel(h, deal, []))  # nothing funded, it seemed
    assert provider.refunds == []
    h.catch_up()
    h.clock.advance(RECOVERY_AGE)
    assert h.worker().recover() == 1  # the charge, which landed
    (charge_id, *_), _ = provider.charges
    (mid,) = deal.milestones
    assert provider.refunds == [
        (
            L.refund_id(deal.contract_id, mid, charge_id),
            charge_reference(charge_id),
            50_000,
            "USD",
        )
    ]
    assert h.types(f"escrow-{deal.contract_id}")[-4:] == [
        "EscrowFunded",
        "EscrowRefunded",
        "RefundRequested",
        "RefundSucceeded",
    ]
    assert refund_statuses(h, deal) == [("succeeded", 50_000)]
    assert h.worker().recover() == 0
