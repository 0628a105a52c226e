"""IdentityService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from services.identity import domain
from services.identity.mailer import Mailer, MailSettings, token_key
from services.identity.service import IdentityService
from shared.config import settings
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    Unauthorized,
)
from shared.personal import ERASED, unwrap
from shared.testing import ServiceHarness

EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple 42"  # pragma: allowlist secret


MAIL = MailSettings(
    token_key("test-secret-" + "x" * 40), "smtp://127.0.0.1:1", "https://app.example", "m@x"
)


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(IdentityService, tmp_path, mail=MAIL)


def test_an_address_is_registered_once_and_a_retry_is_that_registration(
    h: ServiceHarness,
) -> None:
    first = h.worker(key="k1").register(EMAIL, PASSWORD, ["buyer"])
    assert h.worker(key="k1").register(EMAIL, PASSWORD, ["buyer"]) == first
    with pytest.raises(Conflict) as caught:
        h.worker(key="k2").register(EMAIL.upper(), PASSWORD, ["seller"])
    assert caught.value.details["reason"] == "email_taken"
    assert h.types(f"user-{first['user_id']}") == ["UserRegistered", "EmailVerificationRequested"]


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
    assert expires == h.clock.now() + timedelta(seconds=settings().session_idle_seconds)
    rotated = h.worker().refresh(tokens["refresh_token"])
    h.clock.advance(domain.REFRESH_GRACE + timedelta(seconds=30))
    with pytest.raises(Unauthorized):
        h.worker().refresh(tokens["refresh_token"])  # the old one again, later: stolen
    assert h.types(stream) == ["SessionStarted", "SessionRefreshed", "SessionRevoked"]
    with pytest.raises(Unauthorized):
        h.worker().refresh(rotated["refresh_token"])


def test_two_tabs_refreshing_one_token_at_once_both_get_the_new_one(h: ServiceHarness) -> None:
    """The other tab's rotation lands between this one's read and append: this
    one decides again, sees its token was just rotated out, and is given the
    token that replaced it; the session lives on."""
    h.worker().register(EMAIL, PASSWORD, ["buyer"])
    token = h.worker().login(EMAIL, PASSWORD)["refresh_token"]
    session_id = token.split(".")[0]
    stream = f"session-{session_id}"
    other_tab = domain.refresh_token(MAIL.key, session_id, 1)
    expires = h.clock.now() + timedelta(minutes=30)
    h.race(
        stream,
        [("SessionRefreshed", {"token_hash": domain.hash_token(other_tab), "expires_at": expires})],
    )
    assert h.worker().refresh(token)["refresh_token"] == other_tab
    assert h.types(stream) == ["SessionStarted", "SessionRefreshed"]
    assert h.worker().refresh(other_tab)["refresh_token"] != other_tab


class Outbox:
    """An SMTP server that keeps what it is sent (or fails, when told to)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.failing = False

    def send(self, message: Any) -> None:
        if self.failing:
            raise ConnectionRefusedError("smtp down")
        self.sent.append(message)


def mailer(h: ServiceHarness, outbox: Outbox) -> Mailer:
    return Mailer(h.db, outbox, MAIL.key, MAIL.app_url, MAIL.mail_from)  # type: ignore[arg-type]


def token_in(message: Any) -> str:
    found = re.search(r"token=([^\s&]+)", message.get_content())
    assert found, message.get_content()
    return unquote(found.group(1))


def test_a_sign_up_mails_one_verification_link_whose_token_is_in_no_event(
    h: ServiceHarness,
) -> None:
    user = h.worker().register(EMAIL, PASSWORD, ["buyer"])
    outbox = Outbox()
    outbox.failing = True
    h.catch_up()
    h.catch_up()  # a replay queues nothing more
    assert mailer(h, outbox).send_due(h.clock.now()) == 0  # the server is down: retried later
    outbox.failing = False
    assert mailer(h, outbox).send_due(h.clock.now()) == 0  # not due yet (backoff)
    later = h.clock.advance(timedelta(seconds=5))
    assert mailer(h, outbox).send_due(later) == 1
    assert mailer(h, outbox).send_due(later + timedelta(hours=1)) == 0  # sent once
    (message,) = outbox.sent
    assert message["To"] == EMAIL and "verify" in message["Subject"].lower()
    token = token_in(message)
    stream = f"user-{user['user_id']}"
    assert all(token not in str(e.data) for e in h.recorded(stream))
    assert h.worker().login(EMAIL, PASSWORD)["email_verified"] is False
    assert h.worker().verify_email(token)["email_verified"] is True
    assert h.worker().login(EMAIL, PASSWORD)["email_verified"] is True
    with pytest.raises(TokenUsed):
        h.worker().verify_email(token)
    with pytest.raises(TokenInvalid):
        h.worker().verify_email(token[:-3] + "AAA")


def test_reset_tokens_are_single_use_expire_and_end_every_session(h: ServiceHarness) -> None:
    h.worker().register(EMAIL, PASSWORD, ["buyer"])
    session = h.worker().login(EMAIL, PASSWORD)
    assert h.worker().request_password_reset("nobody@example.com") == {"accepted": True}
    assert h.worker().request_password_reset(EMAIL) == {"accepted": True}
    h.catch_up()
    outbox = Outbox()
    mailer(h, outbox).send_due(h.clock.advance(timedelta(seconds=5)))  # (events: real time)
    resets = [m for m in outbox.sent if "reset" in m["Subject"].lower()]
    assert len(resets) == 1 and resets[0]["To"] == EMAIL
    token = token_in(resets[0])
    new_password = "a brand new passphrase 77"  # pragma: allowlist secret
    h.worker().reset_password(token, new_password)
    with pytest.raises(TokenUsed):
        h.worker().reset_password(token, new_password + "!")
    with pytest.raises(Unauthorized):
        h.worker().refresh(session["refresh_token"])  # the session ended with the reset
    assert h.worker().login(EMAIL, new_password)["user_id"]
    h.worker().request_password_reset(EMAIL)
    h.catch_up()
    mailer(h, outbox).send_due(h.clock.advance(timedelta(seconds=5)))
    late = token_in(outbox.sent[-1])
    h.clock.advance(domain.RESET_PASSWORD_TTL + timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        h.worker().reset_password(late, new_password + "?")


def test_changing_the_password_ends_every_other_session(h: ServiceHarness) -> None:
    user = h.worker().register(EMAIL, PASSWORD, ["buyer"])
    uid = user["user_id"]
    here, there = h.worker().login(EMAIL, PASSWORD), h.worker().login(EMAIL, PASSWORD)
    sid = here["refresh_token"].split(".")[0]
    with pytest.raises(InvalidInput):
        h.worker(actor=uid).change_password(uid, sid, "not the password at all", "x" * 20)
    h.worker(actor=uid).change_password(uid, sid, PASSWORD, "another good passphrase 9")
    with pytest.raises(Unauthorized):
        h.worker().refresh(there["refresh_token"])
    assert h.worker().refresh(here["refresh_token"])["user_id"] == uid
    h.worker(actor=uid).logout_everywhere(uid)
    with pytest.raises(Unauthorized):
        h.worker().refresh(here["refresh_token"])


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
    assert [e.type for e in events][-2:] == ["PersonalDataErased", "SessionsEnded"]
    (profile,) = [e for e in events if e.type == "BuyerProfileUpdated"]
    assert events[0].data["email"] == ERASED and profile.data["company_name"] == ERASED
    assert all(e.data["email"] == ERASED for e in events if "email" in e.data)
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


def test_a_buyer_saves_and_unsaves_a_seller_on_their_own_stream(h: ServiceHarness) -> None:
    buyer = h.worker().register(EMAIL, PASSWORD, ["buyer"])["user_id"]
    seller = h.worker().register("grace@example.com", PASSWORD, ["seller"])["user_id"]
    for _ in range(2):  # saving again records nothing
        assert h.worker(actor=buyer).save_freelancer(buyer, seller)["saved"] is True
    with pytest.raises(Forbidden):
        h.worker(actor=seller).save_freelancer(buyer, seller)  # only the buyer's own list
    with pytest.raises(Forbidden):
        h.worker(actor=seller).save_freelancer(seller, seller)  # a seller is no buyer
    with pytest.raises(NotFound):
        h.worker(actor=buyer).save_freelancer(buyer, str(uuid.uuid4()))
    with pytest.raises(InvalidInput):
        h.worker(actor=buyer).save_freelancer(buyer, buyer)
    assert h.worker(actor=buyer).unsave_freelancer(buyer, seller)["saved"] is False
    h.worker(actor=buyer).unsave_freelancer(buyer, seller)
    saved = [t for t in h.types(f"user-{buyer}") if t.startswith("Freelancer")]
    assert saved == ["FreelancerSaved", "FreelancerUnsaved"]
