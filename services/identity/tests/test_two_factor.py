"""Two-factor sign-in: the pure rules, and IdentityService's entrypoints on the
embedded store with a fixed clock (codes made by pyotp, as an app makes them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from services.identity import two_factor
from services.identity.admin import grant_admin
from services.identity.mailer import MailSettings, token_key
from services.identity.service import IdentityService
from services.identity.two_factor import TwoFactor
from shared.auth import AccessTokens
from shared.errors import Conflict, InvalidInput, TokenInvalid, Unauthorized
from shared.testing import ServiceHarness

EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple 42"  # pragma: allowlist secret
MAIL = MailSettings(
    token_key("test-secret-" + "x" * 40), "smtp://127.0.0.1:1", "https://app.example", "m@x"
)
NOW = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
SECRET = two_factor.new_secret(bytes(range(20)))


def code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


# -- the rules ------------------------------------------------------------------


def test_a_code_is_taken_within_one_step_of_drift_and_only_once() -> None:
    state = TwoFactor("e1", SECRET, enabled=True)
    for drift in (-30, 0, 30):
        assert two_factor.take_code(state, code(SECRET, NOW + timedelta(seconds=drift)), NOW)
    with pytest.raises(InvalidInput):
        two_factor.take_code(state, code(SECRET, NOW + timedelta(seconds=90)), NOW)
    ((_, taken),) = two_factor.take_code(state, code(SECRET, NOW), NOW)
    used = TwoFactor("e1", SECRET, enabled=True, last_step=taken["step"])
    with pytest.raises(InvalidInput):  # the same code again: a replay
        two_factor.take_code(used, code(SECRET, NOW), NOW)
    with pytest.raises(InvalidInput):  # an older one
        two_factor.take_code(used, code(SECRET, NOW - timedelta(seconds=30)), NOW)


def test_recovery_codes_are_80_bits_work_once_and_are_typed_loosely() -> None:
    codes = [two_factor.recovery_code(bytes([i]) * 10) for i in range(3)]
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes)
    state = TwoFactor(
        "e1", SECRET, enabled=True, recovery_hashes=tuple(map(two_factor.hash_recovery_code, codes))
    )
    ((_, used),) = two_factor.take_recovery_code(state, codes[1].upper().replace("-", " "))
    assert used == {"index": 1}
    spent = TwoFactor(**{**state.__dict__, "used_recovery": frozenset({1})})
    with pytest.raises(InvalidInput):
        two_factor.take_recovery_code(spent, codes[1])
    assert spent.recovery_codes_left == 2


def test_a_challenge_is_bound_to_its_user_password_time_and_signs_in_once() -> None:
    key, state = b"k" * 32, TwoFactor("e1", SECRET, enabled=True, last_step=7)
    token = two_factor.challenge(key, "u1", "hash-1", state, NOW + two_factor.CHALLENGE_TTL)
    assert two_factor.challenge_user(token) == "u1"
    two_factor.check_challenge(key, token, "hash-1", state, NOW)
    for password_hash, at in (("hash-2", NOW), ("hash-1", NOW + timedelta(minutes=6))):
        with pytest.raises(TokenInvalid):
            two_factor.check_challenge(key, token, password_hash, state, at)
    for used in (replace(state, last_step=8), replace(state, used_recovery=frozenset({0}))):
        with pytest.raises(TokenInvalid):  # a code was taken since: it signed in already
            two_factor.check_challenge(key, token, "hash-1", used, NOW)
    for forged in ("u2" + token[2:], token[:-1] + "é"):
        with pytest.raises(TokenInvalid):
            two_factor.check_challenge(key, forged, "hash-1", state, NOW)
    with pytest.raises(TokenInvalid):
        two_factor.challenge_user("not-a-challenge")
    assert (
        two_factor.code_step(SECRET, "\uff11\uff12\uff13\uff14\uff15\uff16", NOW) is None
    )  # not ASCII digits: wrong


def test_administrators_cannot_turn_it_off() -> None:
    state = TwoFactor("e1", SECRET, enabled=True)
    with pytest.raises(Conflict) as caught:
        two_factor.disable(state, ("buyer", "admin"), "test")
    assert caught.value.details["reason"] == "two_factor_required"
    assert two_factor.session_roles(("admin", "buyer"), False) == (["buyer"], ["admin"])
    assert two_factor.session_roles(("admin", "buyer"), True) == (["admin", "buyer"], [])


# -- the service -----------------------------------------------------------------


TOKENS = AccessTokens("t" * 40)


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(IdentityService, tmp_path, mail=MAIL, tokens=TOKENS)


def later(h: ServiceHarness) -> datetime:
    """The clock a step on (each code is taken once: the next login needs the next one)."""
    h.clock.advance(timedelta(seconds=30))
    return h.clock.now()


def enrolled(h: ServiceHarness) -> tuple[str, str, list[str]]:
    """(user id, secret, recovery codes) of an account with two-factor sign-in on."""
    user_id = h.worker().register(EMAIL, PASSWORD, ["buyer"])["user_id"]
    tokens = h.worker().login(EMAIL, PASSWORD)
    me = h.worker(actor=user_id)
    now = h.clock.now()
    setup = me.start_two_factor(user_id, PASSWORD)
    assert setup["otpauth_uri"].startswith("otpauth://totp/Marketplace:ada%40example.com?")
    assert h.worker(actor=user_id).two_factor_status(user_id)["pending"] is True
    session_id = tokens["refresh_token"].split(".")[0]
    codes = h.worker(actor=user_id).enable_two_factor(
        user_id, session_id, code(setup["secret"], now)
    )["recovery_codes"]
    return user_id, setup["secret"], codes


def test_sign_in_needs_the_second_factor_once_it_is_on(h: ServiceHarness) -> None:
    user_id, secret, codes = enrolled(h)
    assert len(codes) == 10 and len(set(codes)) == 10
    with pytest.raises(Unauthorized) as caught:
        h.worker().login(EMAIL, PASSWORD)
    assert caught.value.details["reason"] == "two_factor_required"
    challenge = caught.value.details["challenge"]
    with pytest.raises(InvalidInput):  # the code that turned it on was taken
        h.worker().login_two_factor(challenge, code(secret, h.clock.now()))
    now = later(h)
    tokens = h.worker().login_two_factor(challenge, code(secret, now))
    assert tokens["two_factor"] is True
    principal = TOKENS.verify(tokens["access_token"])
    assert principal.two_factor
    with pytest.raises(TokenInvalid):  # a challenge signs in once
        h.worker().login_two_factor(challenge, recovery_code=codes[0])

    def challenge_now() -> str:
        with pytest.raises(Unauthorized) as caught:
            h.worker().login(EMAIL, PASSWORD)
        return str(caught.value.details["challenge"])

    with pytest.raises(InvalidInput):  # the same code twice
        h.worker().login_two_factor(challenge_now(), code(secret, now))
    again = challenge_now()
    assert h.worker().login_two_factor(again, recovery_code=codes[0])["user_id"] == user_id
    with pytest.raises(InvalidInput):
        h.worker().login_two_factor(challenge_now(), recovery_code=codes[0])
    status = h.worker(actor=user_id).two_factor_status(user_id)
    assert status == {
        "enabled": True,
        "pending": False,
        "required": False,
        "recovery_codes_left": 9,
    }
    # A refreshed session keeps what its login proved.
    assert h.worker().refresh(tokens["refresh_token"])["two_factor"] is True


def test_the_secret_is_sealed_in_the_log_and_never_in_clear(
    h: ServiceHarness, tmp_path: Path
) -> None:
    user_id, secret, codes = enrolled(h)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("events.sqlite*"))
    assert b"TwoFactorEnrollmentStarted" in stored  # (the file is where the log is)
    assert secret.encode() not in stored
    for recovery in codes:
        assert recovery.encode() not in stored and recovery.replace("-", "").encode() not in stored
    (started,) = [
        e for e in h.recorded(f"user-{user_id}") if e.type == "TwoFactorEnrollmentStarted"
    ]
    assert started.data["secret"] == secret  # read back through the person's key


def test_turning_it_on_ends_every_other_session(h: ServiceHarness) -> None:
    user_id = h.worker().register(EMAIL, PASSWORD, ["buyer"])["user_id"]
    here, there = h.worker().login(EMAIL, PASSWORD), h.worker().login(EMAIL, PASSWORD)
    secret = h.worker(actor=user_id).start_two_factor(user_id, PASSWORD)["secret"]
    with pytest.raises(InvalidInput):
        h.worker(actor=user_id).enable_two_factor(user_id, "s", "000000")
    h.worker(actor=user_id).enable_two_factor(
        user_id, here["refresh_token"].split(".")[0], code(secret, h.clock.now())
    )
    with pytest.raises(Unauthorized):
        h.worker().refresh(there["refresh_token"])
    assert h.worker().refresh(here["refresh_token"])["user_id"] == user_id


def test_a_challenge_stops_when_the_password_changes(h: ServiceHarness) -> None:
    user_id, secret, _ = enrolled(h)
    with pytest.raises(Unauthorized) as caught:
        h.worker().login(EMAIL, PASSWORD)
    new = "another good passphrase 9"  # pragma: allowlist secret
    h.worker(actor=user_id).change_password(user_id, "s", PASSWORD, new)
    now = later(h)
    with pytest.raises(TokenInvalid):
        h.worker().login_two_factor(caught.value.details["challenge"], code(secret, now))


def test_an_administrator_has_the_role_only_with_a_second_factor_and_keeps_it_on(
    h: ServiceHarness,
) -> None:
    user_id = h.worker().register(EMAIL, PASSWORD, ["buyer"])["user_id"]
    grant_admin(h.store, EMAIL, "test")  # type: ignore[arg-type]  # a wrapped store
    plain = h.worker().login(EMAIL, PASSWORD)
    assert plain["roles"] == ["buyer"] and plain["withheld_roles"] == ["admin"]
    principal = TOKENS.verify(plain["access_token"])
    assert principal.roles == ("buyer",) and principal.withheld_roles == ("admin",)
    assert h.worker(actor=user_id).two_factor_status(user_id)["required"] is True
    secret = h.worker(actor=user_id).start_two_factor(user_id, PASSWORD)["secret"]
    codes = h.worker(actor=user_id).enable_two_factor(user_id, "s", code(secret, h.clock.now()))
    with pytest.raises(Unauthorized) as caught:
        h.worker().login(EMAIL, PASSWORD)
    now = later(h)
    tokens = h.worker().login_two_factor(caught.value.details["challenge"], code(secret, now))
    assert tokens["roles"] == ["admin", "buyer"] and tokens["withheld_roles"] == []
    with pytest.raises(Conflict) as refused:
        h.worker(actor=user_id).disable_two_factor(
            user_id, PASSWORD, recovery_code=codes["recovery_codes"][0]
        )
    assert refused.value.details["reason"] == "two_factor_required"
    assert h.worker(actor=user_id).two_factor_status(user_id)["recovery_codes_left"] == 10


def test_a_user_turns_it_off_with_the_password_and_a_code(h: ServiceHarness) -> None:
    user_id, secret, codes = enrolled(h)
    with pytest.raises(InvalidInput):
        h.worker(actor=user_id).disable_two_factor(user_id, "wrong password here", codes[0])
    now = later(h)
    new_codes = h.worker(actor=user_id).renew_recovery_codes(user_id, code(secret, now))
    with pytest.raises(InvalidInput):  # renewed: the old codes stopped
        h.worker(actor=user_id).disable_two_factor(user_id, PASSWORD, recovery_code=codes[1])
    h.worker(actor=user_id).disable_two_factor(
        user_id, PASSWORD, recovery_code=new_codes["recovery_codes"][1]
    )
    assert h.worker().login(EMAIL, PASSWORD)["two_factor"] is False
