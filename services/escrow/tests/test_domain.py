"""Escrow's decisions over one contract's stream, with no broker, database or clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.escrow import domain as D
from services.escrow import ledger as L
from services.escrow.domain import ContractTerms, Escrow, Payouts
from shared.errors import Conflict, Forbidden, NotFound
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent

T0 = datetime(2026, 11, 27, 9, tzinfo=UTC)
CONTRACT = ContractTerms(
    "c1", "buyer", "seller", "active", "USD", {"m1": 10_000, "m2": 5_000}, frozenset()
)


def fold(state: Escrow | None, events: list[tuple[str, dict]]) -> Escrow:
    for event_type, data in events:
        recorded = RecordedEvent(
            uuid.uuid4(), event_type, 1, data, EventMetadata.root("x"), "escrow-c1", 0, 1, T0
        )
        state = D.evolve(state, DecodedEvent(recorded, data, 1))
    return state or Escrow()


def funded(*milestones: str) -> Escrow:
    state = fold(
        None, D.request_funding(Escrow(), CONTRACT, "buyer", list(milestones), "pm", "ch1")
    )
    return fold(state, D.record_charge(state, CONTRACT, "ch1", True, reference="ch_ref"))


def test_funding_reserves_then_records_the_charge_once():
    requested = fold(
        None, D.request_funding(Escrow(), CONTRACT, "buyer", ["m1", "m2"], "pm", "ch1")
    )
    assert D.request_funding(requested, CONTRACT, "buyer", ["m1", "m2"], "pm", "ch1") == []
    with pytest.raises(Conflict, match="in progress"):
        D.request_funding(requested, CONTRACT, "buyer", ["m1"], "pm", "ch2")
    events = D.record_charge(requested, CONTRACT, "ch1", True)
    assert [(e, d["milestone_id"], d["amount"]) for e, d in events] == [
        ("EscrowFunded", "m1", 10_000),
        ("EscrowFunded", "m2", 5_000),
    ]
    state = fold(requested, events)
    assert D.record_charge(state, CONTRACT, "ch1", True) == []
    with pytest.raises(Conflict, match="already funded"):
        D.request_funding(state, CONTRACT, "buyer", ["m1"], "pm", "ch3")


def test_only_the_buyer_funds_existing_milestones_of_an_active_contract():
    with pytest.raises(Forbidden):
        D.request_funding(Escrow(), CONTRACT, "seller", ["m1"], "pm", "ch")
    with pytest.raises(NotFound):
        D.request_funding(Escrow(), CONTRACT, "buyer", ["m9"], "pm", "ch")
    ended = ContractTerms(**{**CONTRACT.__dict__, "status": "cancelled"})
    with pytest.raises(Conflict):
        D.request_funding(Escrow(), ended, "buyer", ["m1"], "pm", "ch")


def test_a_declined_charge_frees_the_milestone():
    requested = fold(None, D.request_funding(Escrow(), CONTRACT, "buyer", ["m1"], "pm", "ch1"))
    state = fold(
        requested, D.record_charge(requested, CONTRACT, "ch1", False, "card_declined", "no")
    )
    assert state.charges["ch1"].status == "failed"
    assert D.request_funding(state, CONTRACT, "buyer", ["m1"], "pm", "ch2")


def test_a_charge_landing_after_the_contract_ended_is_refunded():
    requested = fold(None, D.request_funding(Escrow(), CONTRACT, "buyer", ["m1"], "pm", "ch1"))
    closed = fold(requested, [("EscrowClosed", {"reason": "contract cancelled", "cause": "e1"})])
    events = D.record_charge(closed, CONTRACT, "ch1", True, reference="ch_ref")
    assert [e for e, _ in events] == ["EscrowFunded", "EscrowRefunded", "RefundRequested"]
    requested = events[-1][1]
    assert (requested["charge_id"], requested["charge_reference"], requested["amount"]) == (
        "ch1",
        "ch_ref",
        10_000,
    )
    assert requested["refund_id"] == L.refund_id("c1", "m1", "ch1")
    state = fold(closed, events)
    assert state.ledger.holds[("c1", "m1")].held == 0
    assert state.refunds[requested["refund_id"]].status == "requested"


def test_release_happens_once_per_milestone_whatever_the_number_of_approvals():
    state = funded("m1")
    (released,) = D.release(state, CONTRACT, "m1", "approval-1", 1_000)
    assert released[1]["amount"] == 10_000 and released[1]["fee"] == 1_000
    state = fold(state, [released])
    assert D.release(state, CONTRACT, "m1", "approval-1", 1_000) == []  # redelivered
    assert D.release(state, CONTRACT, "m1", "approval-2", 1_000) == []  # nothing held


def test_a_frozen_milestone_is_not_released_and_a_late_freeze_is_implied_by_the_split():
    state = funded("m1", "m2")
    state = fold(state, D.freeze(state, CONTRACT, "m1", "dispute-1"))
    assert D.release(state, CONTRACT, "m1", "approval", 1_000) == []
    (settled, refund) = D.settle(state, CONTRACT, "m1", 6_000, "resolution-1", 1_000)
    assert (settled[1]["to_seller"], settled[1]["fee"], settled[1]["refunded"]) == (
        6_000,
        600,
        4_000,
    )
    assert (refund[0], refund[1]["amount"]) == ("RefundRequested", 4_000)
    # The resolution's notice arrived before the dispute's: freeze, then split.
    events = D.settle(state, CONTRACT, "m2", 1_000, "resolution-2", 1_000)
    assert [e for e, _ in events] == ["EscrowFrozen", "EscrowDisputeSettled", "RefundRequested"]
    state = fold(state, [settled, refund, *events])
    assert all(h.held == 0 and not h.disputed for h in state.ledger.holds.values())
    assert D.freeze(state, CONTRACT, "m2", "dispute-2") == []  # nothing held any more


def test_payouts_never_exceed_what_releases_credited():
    state = Payouts()
    (first,) = D.request_payout(state, 9_000, "seller", "p1", 5_000, "USD")
    state = fold_payouts(state, [first])
    with pytest.raises(Conflict):
        D.request_payout(state, 9_000, "seller", "p2", 4_001, "USD")
    assert D.request_payout(state, 9_000, "seller", "p2", 4_000, "USD")
    assert D.payout_sent(state, "p1", "ref")
    state = fold_payouts(state, D.payout_sent(state, "p1", "ref"))
    assert D.payout_sent(state, "p1", "ref") == []


def fold_payouts(state: Payouts, events: list[tuple[str, dict]]) -> Payouts:
    for event_type, data in events:
        recorded = RecordedEvent(
            uuid.uuid4(), event_type, 1, data, EventMetadata.root("x"), "payouts-s", 0, 1, T0
        )
        state = D.evolve_payouts(state, DecodedEvent(recorded, data, 1))
    return state


def test_terms_are_settled_only_on_the_accepted_version_with_the_milestones_asked_for():
    offered = ContractTerms("c1", "b1", "s1", "offered", "USD", {"m1": 100}, offer_version=1)
    assert not offered.settled_for([])
    started_early = ContractTerms(
        "c1", "b1", "s1", "active", "USD", {"m1": 100}, offer_version=1, accepted_version=2
    )
    assert not started_early.settled_for([])  # accepted v2, but v2's terms not heard yet
    started = ContractTerms(
        "c1", "b1", "s1", "active", "USD", {"m2": 100}, offer_version=2, accepted_version=2
    )
    assert started.settled_for(["m2"]) and not started.settled_for(["m3"])


# -- refunds -------------------------------------------------------------------------


def test_a_cancellation_asks_for_each_refund_against_the_charge_with_a_derived_id():
    state = funded("m1", "m2")
    ended = ContractTerms(**{**CONTRACT.__dict__, "status": "cancelled"})
    events = D.refund_all(state, ended, ["m1", "m2"], "contract cancelled", "cancel-1")
    assert [e for e, _ in events] == [
        "EscrowRefunded",
        "RefundRequested",
        "EscrowRefunded",
        "RefundRequested",
        "EscrowClosed",
    ]
    asked = [d for e, d in events if e == "RefundRequested"]
    assert [(d["milestone_id"], d["amount"], d["charge_reference"]) for d in asked] == [
        ("m1", 10_000, "ch_ref"),
        ("m2", 5_000, "ch_ref"),
    ]
    # A replay decides the same ids; a redelivery decides nothing.
    again = D.refund_all(funded("m1", "m2"), ended, ["m1", "m2"], "contract cancelled", "cancel-1")
    assert [d["refund_id"] for e, d in again if e == "RefundRequested"] == [
        d["refund_id"] for d in asked
    ]
    assert len({d["refund_id"] for d in asked}) == 2
    state = fold(state, events)
    assert D.refund_all(state, ended, ["m1", "m2"], "contract cancelled", "cancel-1") == []
    assert {r.status for r in state.refunds.values()} == {"requested"}


def test_a_split_giving_the_seller_everything_asks_for_no_refund():
    state = funded("m1")
    state = fold(state, D.freeze(state, CONTRACT, "m1", "dispute-1"))
    events = D.settle(state, CONTRACT, "m1", 10_000, "resolution-1", 1_000)
    assert [e for e, _ in events] == ["EscrowDisputeSettled"]


def test_a_refunds_answer_is_recorded_once_per_attempt():
    state = funded("m1")
    state = fold(state, D.refund_all(state, CONTRACT, ["m1"], "milestone removed", "rm-1"))
    (refund,) = state.refunds.values()
    rid = refund.refund_id
    assert refund.key == rid
    failed = D.record_refund(state, rid, 1, False, reason="refund_failed", message="no")
    assert failed == [
        (
            "RefundFailed",
            {"refund_id": rid, "reason": "refund_failed", "message": "no", "attempt": 1},
        )
    ]
    state = fold(state, failed)
    assert D.record_refund(state, rid, 1, True, "re_1") == []  # answered already
    (retried,) = D.retry_refund(state, rid, max_attempts=2)
    state = fold(state, [retried])
    assert (state.refunds[rid].status, state.refunds[rid].key) == ("requested", f"{rid}:2")
    assert D.record_refund(state, rid, 1, True, "re_1") == []  # a stale attempt's answer
    state = fold(state, D.record_refund(state, rid, 2, False, reason="refund_failed"))
    assert D.retry_refund(state, rid, max_attempts=2) == []  # bounded: stays failed
    assert state.refunds[rid].status == "failed"


def test_a_retried_refund_that_succeeds_keeps_the_providers_reference():
    state = funded("m1")
    state = fold(state, D.refund_all(state, CONTRACT, ["m1"], "milestone removed", "rm-1"))
    (rid,) = state.refunds
    state = fold(state, D.record_refund(state, rid, 1, False, reason="refund_failed"))
    state = fold(state, D.retry_refund(state, rid))
    state = fold(state, D.record_refund(state, rid, 2, True, "re_2"))
    assert (state.refunds[rid].status, state.refunds[rid].reference) == ("succeeded", "re_2")
    assert D.retry_refund(state, rid) == []
    assert state.ledger.holds[("c1", "m1")].refunded == 10_000  # the money moved once


def test_the_sandbox_declines_refunds_of_a_refund_fail_card():
    from services.escrow.payments import SandboxProvider

    sandbox = SandboxProvider()
    charged = sandbox.charge("ch1", 1_000, "USD", "pm_card_refundFail")
    assert charged.succeeded
    declined = sandbox.refund("r1", charged.reference, 1_000, "USD")
    assert (declined.succeeded, declined.reason) == (False, "refund_failed")
    ok = sandbox.refund(
        "r1", sandbox.charge("ch2", 1_000, "USD", "pm_card_visa").reference, 1, "USD"
    )
    assert ok.succeeded and ok.reference == sandbox.refund("r1", "other", 1, "USD").reference
