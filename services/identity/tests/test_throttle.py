"""The throttle's waits: free, then doubling, never past the cap; and attempts
counted before they are judged, so a parallel burst meets its own waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity.throttle import (
    ACCOUNT_AT_ADDRESS,
    Limit,
    Throttle,
    login_keys,
    metadata,
    sign_up_keys,
)
from shared.database import Database, create_schema
from shared.errors import TooManyRequests
from shared.sql import shared_engine


def test_waits_start_after_the_free_failures_and_double_up_to_the_cap():
    limit = Limit(3, timedelta(minutes=15), timedelta(seconds=10))
    waits = [limit.wait_after(n).total_seconds() for n in range(1, 10)]
    assert waits == [0, 0, 1, 2, 4, 8, 10, 10, 10]
    assert limit.wait_after(10**6) == timedelta(seconds=10)


def test_sign_ups_past_the_allowance_wait_a_quarter_of_an_hour_each():
    (limit,) = sign_up_keys("203.0.113.5", 3).values()
    waits = [limit.wait_after(n) for n in range(1, 6)]
    assert waits == [timedelta(0)] * 2 + [timedelta(minutes=15)] * 3


def test_an_account_counts_alone_only_from_anywhere_and_with_its_address():
    keys = login_keys("a@example.com", "203.0.113.5")
    assert len(keys) == 3 and sum(limit is ACCOUNT_AT_ADDRESS for limit in keys.values()) == 1
    assert "a@example.com" not in "".join(keys)
    assert login_keys("a@example.com", "203.0.113.5") != login_keys("a@example.com", "203.0.113.6")
    assert len(login_keys("a@example.com", None)) == 1
    assert sign_up_keys(None, 5) == {}


@pytest.fixture(params=["sqlite", "postgres"])
def throttle(request, tmp_path) -> Throttle:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'throttle.sqlite'}"
    else:
        url = request.getfixturevalue("fresh_pg")
    engine = shared_engine(url)
    create_schema(engine, metadata)
    return Throttle(Database(engine))


FIVE = {"k": Limit(5, timedelta(minutes=15), timedelta(minutes=15))}
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_failures_past_the_allowance_wait_and_a_success_gives_its_count_back(throttle):
    for _ in range(4):
        throttle.take(FIVE, NOW, "guesses")
    throttle.take(FIVE, NOW, "guesses")
    throttle.give_back(FIVE)  # the fifth succeeded: four failures, no wait
    throttle.take(FIVE, NOW, "guesses")  # the fifth failure: a 1 s wait
    with pytest.raises(TooManyRequests) as refused:
        throttle.take(FIVE, NOW, "guesses")
    assert refused.value.details["retry_after"] == 2
    # A refused attempt counts nothing: once the wait is over, the sixth waits 2 s.
    later = NOW + timedelta(seconds=1)
    throttle.take(FIVE, later, "guesses")
    with pytest.raises(TooManyRequests):
        throttle.take(FIVE, later + timedelta(seconds=1), "guesses")
