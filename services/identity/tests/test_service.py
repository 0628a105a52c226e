"""IdentityService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.identity import domain
from services.identity.service import IdentityService
from shared.config import settings
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized
from shared.personal import ERASED, unwrap
from shared.testing import ServiceHarness

EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple 42"  # pragma: allowlist secret


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(IdentityService, tmp_path)


def test_an_address_is_registered_once_and_a_retry_is_that_registration(
    h: ServiceHarness,
) -> None:
    first = h.worker(key="k1").register(EMAIL, PASSWORD, ["buyer"])
    assert h.worker(key="k1").register(EMAIL, PASSWORD, ["buyer"]) == first
    with pytest.raises(Conflict) as caught:
        h.worker(key="k2").register(EMAIL.upper(), PASSWORD, ["seller"])
    assert caught.value.details["reason"] == "email_taken"
    assert h.types(f"user-{first['user_id']}") == ["UserRegistered"]


def test_losing_the_race_for_an_address_is_email_taken(h: ServiceHarness) -> None:
    other = str(uuid.uuid4())
    h.race(domain.email_claim_stream(EMAIL), [("EmailClaimed", {"user_id": other, "email": EMAIL})])
    with pytest.raises(Conflict) as caught:
        h.worker().register(EMAIL, PASSWORD, ["buyer"])
    assert caught.value.details["reason"] == "email_taken"


def test_sessions_expire_by_the_clock_and_a_reused_token_revokes_them(
    h: ServiceHarness,
) -> None:
    h.worker().register(EMAIL, PASSWORD, ["buyer"])
    tokens = h.worker().login(EMAIL, PASSWORD)
    session_id = tokens["refresh_token"].split(".")[0]
    stream = f"session-{session_id}"
    (started,) = h.recorded(stream)
    expires = datetime.fromisoformat(started.data["expires_at"])
    assert expires == h.clock.now() + timedelta(seconds=settings().refresh_token_ttl)
    rotated = h.worker().refresh(tokens["refresh_token"])
    with pytest.raises(Unauthorized):
        h.worker().refresh(tokens["refresh_token"])  # the old one again: stolen
    assert h.types(stream) == ["SessionStarted", "SessionRefreshed", "SessionRevoked"]
    with pytest.raises(Unauthorized):
        h.worker().refresh(rotated["refresh_token"])


def test_two_refreshes_at_once_one_wins(h: ServiceHarness) -> None:
    h.worker().register(EMAIL, PASSWORD, ["buyer"])
    token = h.worker().login(EMAIL, PASSWORD)["refresh_token"]
    stream = f"session-{token.split('.')[0]}"
    h.race(stream, [("SessionRefreshed", {"token_hash": "x", "expires_at": h.clock.now()})])
    with pytest.raises(Unauthorized) as caught:
        h.worker().refresh(token)
    assert caught.value.details["reason"] == "reused"
    assert h.types(stream) == ["SessionStarted", "SessionRefreshed"]


def test_an_erased_person_is_gone_from_the_log_and_cannot_log_in(h: ServiceHarness) -> None:
    user = h.worker().register(EMAIL, PASSWORD, ["buyer"])
    user_id = user["user_id"]
    tokens = h.worker().login(EMAIL, PASSWORD)
    h.worker(actor=user_id).update_buyer_profile(user_id, {"company_name": "Ada Ltd"})
    with pytest.raises(Forbidden):
        h.worker(actor=str(uuid.uuid4())).erase_personal_data(user_id)
    assert h.worker(actor=user_id).erase_personal_data(user_id) == {
        "user_id": user_id,
        "erased": True,
    }
    raw = unwrap(h.store.inner).read_stream(f"user-{user_id}")  # the bare backend
    assert "ada@example.com" not in str([e.data for e in raw]) and "Ada Ltd" not in str(raw)
    events = h.recorded(f"user-{user_id}")
    assert [e.type for e in events][-1] == "PersonalDataErased"
    assert events[0].data["email"] == ERASED and events[1].data["company_name"] == ERASED
    with pytest.raises(Unauthorized):
        h.worker().login(EMAIL, PASSWORD)
    with pytest.raises(Unauthorized):
        h.worker().refresh(tokens["refresh_token"])
    with pytest.raises(NotFound):
        h.worker(actor=user_id).update_buyer_profile(user_id, {"company_name": "Again"})
    # twice is the same erasure; an administrator may erase too
    h.worker(actor="admin-1", roles=["admin"]).erase_personal_data(user_id)
    assert [e.type for e in h.recorded(f"user-{user_id}")].count("PersonalDataErased") == 1
    # the address is free for a new account
    assert h.worker().register(EMAIL, PASSWORD, ["seller"])["user_id"] != user_id
