"""The escrow ledger's invariants, over random sequences of commands (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.escrow import ledger as L
from shared.errors import ServiceError

MILESTONES = [("c1", "m1"), ("c1", "m2"), ("c2", "m1")]
SELLERS = {"c1": "ann", "c2": "bob"}

commands = st.one_of(
    st.tuples(st.just("fund"), st.sampled_from(MILESTONES), st.integers(-5, 2_000_000)),
    st.tuples(st.just("release"), st.sampled_from(MILESTONES), st.just(0)),
    st.tuples(st.just("refund"), st.sampled_from(MILESTONES), st.integers(0, 2_000_000)),
    st.tuples(st.just("refund_all"), st.sampled_from(MILESTONES), st.just(0)),
    st.tuples(st.just("dispute"), st.sampled_from(MILESTONES), st.just(0)),
    st.tuples(st.just("resolve"), st.sampled_from(MILESTONES), st.integers(0, 2_000_000)),
    st.tuples(
        st.just("payout"), st.sampled_from(sorted(SELLERS.values())), st.integers(-1, 2_000_000)
    ),
)


def decide(ledger: L.Ledger, command: tuple) -> list[dict]:
    name, target, amount = command
    if name == "payout":
        return L.pay_out(ledger, target, amount, "USD")
    contract, milestone = target
    seller = SELLERS[contract]
    return {
        "fund": lambda: L.fund(ledger, contract, milestone, amount, "USD"),
        "release": lambda: L.release(ledger, contract, milestone, seller),
        "refund": lambda: L.refund(ledger, contract, milestone, amount),
        "refund_all": lambda: L.refund(ledger, contract, milestone),
        "dispute": lambda: L.open_dispute(ledger, contract, milestone),
        "resolve": lambda: L.resolve_dispute(ledger, contract, milestone, seller, amount),
    }[name]()


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, max_size=60))
def test_every_sequence_of_commands_keeps_the_books_straight(sequence):
    ledger = L.Ledger()
    released_fees = 0
    for command in sequence:
        try:
            movements = decide(ledger, command)
        except ServiceError:
            continue
        for movement in movements:
            entries = L.postings(movement)
            assert sum(amount for _, amount in entries) == 0, movement
            if movement["kind"] in ("released", "dispute_settled"):
                released_fees += movement["fee"]
            L.apply(ledger, movement)

        assert sum(ledger.balances.values()) == 0
        for (contract, milestone), hold in ledger.holds.items():
            assert hold.funded == hold.released + hold.refunded + hold.held
            assert hold.held >= 0
            assert ledger.balance(L.escrow_account(contract, milestone), "USD") == hold.held
        for seller in SELLERS.values():
            assert ledger.balance(L.seller_account(seller), "USD") >= 0
        assert ledger.balance(L.FEES, "USD") == released_fees
        assert ledger.balance(L.CARD, "USD") <= 0


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_fee_is_rounded_half_up_and_never_exceeds_the_amount(amount, bps):
    fee = L.fee_for(amount, bps)
    assert 0 <= fee <= amount
    assert abs(fee * 10_000 - amount * bps) <= 5_000


def test_fee_rounding_examples():
    assert L.fee_for(1_000) == 100
    assert L.fee_for(5) == 1  # 0.5 rounds up
    assert L.fee_for(4) == 0  # 0.4 rounds down


def test_nothing_is_released_twice():
    ledger = L.Ledger()
    for movement in L.fund(ledger, "c1", "m1", 10_000, "USD"):
        L.apply(ledger, movement)
    for movement in L.release(ledger, "c1", "m1", "ann"):
        L.apply(ledger, movement)
    assert ledger.balance(L.seller_account("ann"), "USD") == 9_000
    assert ledger.balance(L.FEES, "USD") == 1_000
    with pytest.raises(ServiceError):
        L.release(ledger, "c1", "m1", "ann")


def test_a_dispute_freezes_the_milestone_until_split():
    ledger = L.Ledger()
    for step in (
        lambda: L.fund(ledger, "c1", "m1", 10_000, "USD"),
        lambda: L.open_dispute(ledger, "c1", "m1"),
    ):
        for movement in step():
            L.apply(ledger, movement)
    with pytest.raises(ServiceError):
        L.release(ledger, "c1", "m1", "ann")
    with pytest.raises(ServiceError):
        L.refund(ledger, "c1", "m1")
    for movement in L.resolve_dispute(ledger, "c1", "m1", "ann", 6_000):
        L.apply(ledger, movement)
    hold = ledger.holds[("c1", "m1")]
    assert (hold.released, hold.refunded, hold.held, hold.disputed) == (6_000, 4_000, 0, False)
    assert ledger.balance(L.seller_account("ann"), "USD") == 5_400
    assert ledger.balance(L.CARD, "USD") == -6_000


def test_payouts_only_from_the_available_balance():
    ledger = L.Ledger()
    for step in (
        lambda: L.fund(ledger, "c1", "m1", 10_000, "USD"),
        lambda: L.release(ledger, "c1", "m1", "ann"),
    ):
        for movement in step():
            L.apply(ledger, movement)
    with pytest.raises(ServiceError):
        L.pay_out(ledger, "ann", 9_001, "USD")
    for movement in L.pay_out(ledger, "ann", 9_000, "USD"):
        L.apply(ledger, movement)
    assert ledger.balance(L.seller_account("ann"), "USD") == 0
    assert ledger.balance(L.PAYOUT, "USD") == 9_000
