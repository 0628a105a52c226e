"""Access tokens: what verifies, what does not, and that remembering a
verified token changes neither."""

from __future__ import annotations

import time

import pytest

from shared.auth import AccessTokens
from shared.errors import Unauthorized

SECRET = "s" * 48


def reason(tokens: AccessTokens, token: str, now: float | None = None) -> str:
    with pytest.raises(Unauthorized) as refused:
        tokens.verify(token, now)
    return refused.value.details["reason"]


def test_a_valid_token_speaks_for_its_user_again_and_again_until_it_expires():
    tokens = AccessTokens(SECRET, ttl_seconds=60)
    token = tokens.issue("u1", ["buyer"], "session-1")
    first = tokens.verify(token)
    assert (first.user_id, first.roles, first.session_id) == ("u1", ("buyer",), "session-1")
    assert tokens.verify(token) == first  # remembered
    assert reason(tokens, token, now=time.time() + 61) == "expired"


def test_expired_forged_and_foreign_tokens_are_refused():
    tokens = AccessTokens(SECRET, ttl_seconds=60)
    old = tokens.issue("u1", ["buyer"], "s", now=time.time() - 120)
    assert reason(tokens, old) == "expired"
    token = tokens.issue("u1", ["buyer"], "s")
    head, body, signature = token.split(".")
    other = "B" if signature[0] == "A" else "A"  # the first character: all 6 bits count
    forged = f"{head}.{body}.{other}{signature[1:]}"
    assert reason(tokens, forged) == "invalid"
    foreign = AccessTokens("t" * 48).issue("u1", ["admin"], "s")
    assert reason(tokens, foreign) == "invalid"
    tokens.verify(token)  # a remembered token does not make its forgeries pass
    assert reason(tokens, forged) == "invalid"
