"""The throttle's waits: free, then doubling, never past the cap."""

from __future__ import annotations

from datetime import timedelta

from services.identity.throttle import ACCOUNT_AT_ADDRESS, Limit, login_keys, sign_up_keys


def test_waits_start_after_the_free_failures_and_double_up_to_the_cap():
    limit = Limit(3, timedelta(minutes=15), timedelta(seconds=10))
    waits = [limit.wait_after(n).total_seconds() for n in range(1, 10)]
    assert waits == [0, 0, 1, 2, 4, 8, 10, 10, 10]
    assert limit.wait_after(10**6) == timedelta(seconds=10)


def test_an_account_counts_alone_only_from_anywhere_and_with_its_address():
    keys = login_keys("a@example.com", "203.0.113.5")
    assert len(keys) == 3 and sum(limit is ACCOUNT_AT_ADDRESS for limit in keys.values()) == 1
    assert "a@example.com" not in "".join(keys)
    assert login_keys("a@example.com", "203.0.113.5") != login_keys("a@example.com", "203.0.113.6")
    assert len(login_keys("a@example.com", None)) == 1
    assert sign_up_keys(None, 5) == {}
