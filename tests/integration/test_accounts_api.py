"""Accounts a security reviewer would sign off, through the gateway's HTTP API
against real identity and gateway containers, RabbitMQ and PostgreSQL, with
the mails read from the SMTP catcher ``make run`` runs: verification, email
and password changes, resets, and sessions that stop when they end."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from nameko.testing.utils import get_extension

from services.identity.admin import grant_admin
from shared.clock import Clock, SystemClock
from tests.integration.helpers import wait_until
from tests.integration.test_identity_api import PASSWORD, Api, LateClock, assert_problem
from tests.integration.test_projects_api import IN_A_MONTH, Market

pytestmark = pytest.mark.integration

NEW_PASSWORD = "quiet lantern orchard 4417"  # pragma: allowlist secret
SESSION_BOUND = 6.0
"""gateway/sessions.py: a session's tokens stop everywhere within this."""


def email() -> str:
    return f"acct-{uuid.uuid4().hex[:10]}@example.com"


def login(api: Api, address: str, password: str = PASSWORD) -> Any:
    return api.post("/auth/login", {"email": address, "password": password})


# -- verification ------------------------------------------------------------------


def test_sign_up_mails_a_single_use_verification_link(api: Api):
    user = api.signup(["buyer"], verified=False)
    assert user["email_verified"] is False
    mail = api.mails.wait_for(user["email"], "verify_email")
    assert mail["Subject"] == "Verify your email address"
    token = api.mails.token(user["email"], "verify_email")
    # The token is in no event: the log holds its hash only.
    for event in api.store.read_stream(f"user-{user['user_id']}"):
        assert token not in str(event.data) and token.rsplit(".", 1)[1] not in str(event.data)

    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert_problem(api.post("/auth/verify-email", {"token": forged}), 400, "token_invalid")
    assert_problem(api.post("/auth/verify-email", {"token": "not-a-token"}), 400, "token_invalid")
    verified = api.post("/auth/verify-email", {"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {
        "user_id": user["user_id"],
        "email": user["email"],
        "email_verified": True,
    }
    assert_problem(api.post("/auth/verify-email", {"token": token}), 400, "token_used")
    # The refreshed token says so; the one from before does not.
    refreshed = api.post("/auth/refresh", {"refresh_token": user["refresh_token"]}).json()
    assert refreshed["email_verified"] is True
    resend = api.post("/me/email/verification", token=refreshed["access_token"])
    assert_problem(resend, 409, "conflict")


def test_an_unverified_account_may_not_post_a_project_until_it_verifies(market: Market):
    buyer = market.signup(["buyer"], verified=False)
    body = {
        "title": "Build a Django shop",
        "description": "An online shop for handmade furniture, with payments and stock.",
        "scope": "Backend and admin",
        "objectives": ["launch by spring"],
        "budget": {"type": "fixed", "amount": 250_000, "currency": "USD"},
        "deadline": IN_A_MONTH,
        "skills": ["Python", "Django"],
    }
    refused = market.post("/projects", body, buyer["access_token"])
    assert assert_problem(refused, 403, "email_unverified")["reason"] == "email_unverified"
    market.verify_email(buyer["email"])
    tokens = market.post("/auth/refresh", {"refresh_token": buyer["refresh_token"]}).json()
    posted = market.post("/projects", body, tokens["access_token"])
    assert posted.status_code == 201, posted.text
    seller = market.signup(["seller"], verified=False)
    proposal = market.post(
        f"/projects/{posted.json()['project_id']}/proposals",
        market.proposal_body(),
        seller["access_token"],
    )
    assert_problem(proposal, 403, "email_unverified")


def test_changing_the_email_takes_effect_when_the_new_address_is_verified(api: Api):
    user = api.signup(["seller"])
    token, new = user["access_token"], email()
    wrong = api.post("/me/email", {"email": new, "current_password": "not it at all"}, token)
    assert "current_password" in assert_problem(wrong, 422, "invalid_input")["errors"]
    taken = api.signup(["buyer"])["email"]
    clash = api.post("/me/email", {"email": taken, "current_password": PASSWORD}, token)
    assert assert_problem(clash, 409, "conflict")["reason"] == "email_taken"

    asked = api.post("/me/email", {"email": new, "current_password": PASSWORD}, token)
    assert asked.status_code == 202 and asked.json() == {"sent": True, "email": new}
    assert login(api, user["email"]).status_code == 200  # unchanged until verified
    link = api.mails.token(new, "verify_email")
    assert api.post("/auth/verify-email", {"token": link}).json()["email"] == new
    assert login(api, new).status_code == 200
    assert_problem(login(api, user["email"]), 401, "unauthorized")
    wait_until(
        lambda: api.get("/me", token=token).json().get("email") == new, what="the new address"
    )
    # The old address is free again.
    again = api.signup(["buyer"], email=user["email"], verified=False)
    assert again["user_id"] != user["user_id"]
    api.verify_email(user["email"], count=2)  # the second link to that address


# -- passwords ---------------------------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_ends_every_other_session(api: Api):
    user = api.signup()
    here, there = user, login(api, user["email"]).json()
    change = "/me/password"
    wrong = api.post(
        change,
        {
            "current_password": "a wrong guess!",  # pragma: allowlist secret
            "password": NEW_PASSWORD,
        },
        here["access_token"],
    )
    assert "current_password" in assert_problem(wrong, 422, "invalid_input")["errors"]
    weak = api.post(
        change,
        {"current_password": PASSWORD, "password": "password1234"},  # pragma: allowlist secret
        here["access_token"],
    )
    assert "password" in assert_problem(weak, 422, "invalid_input")["errors"]
    changed = api.post(
        change, {"current_password": PASSWORD, "password": NEW_PASSWORD}, here["access_token"]
    )
    assert changed.status_code == 204, changed.text

    (ended,) = wait_until(  # (a 401 Response is falsy: wrapped)
        lambda: (r := api.get("/me", token=there["access_token"])).status_code == 401 and [r],
        timeout=SESSION_BOUND,
        what="the other session's access token refused",
    )
    assert_problem(ended, 401, "session_ended")
    assert_problem(
        api.post("/auth/refresh", {"refresh_token": there["refresh_token"]}), 401, "unauthorized"
    )
    assert api.get("/me", token=here["access_token"]).status_code == 200  # this one goes on
    assert api.post("/auth/refresh", {"refresh_token": here["refresh_token"]}).status_code == 200
    assert_problem(login(api, user["email"]), 401, "unauthorized")
    assert login(api, user["email"], NEW_PASSWORD).status_code == 200


def test_password_reset_by_mail_expired_reused_and_forged_tokens(api: Api):
    user = api.signup()
    ghost = email()
    known = api.post("/auth/password-reset", {"email": user["email"]})
    unknown = api.post("/auth/password-reset", {"email": ghost})
    # The answer never says whether the address is registered.
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == {"accepted": True}

    token = api.mails.token(user["email"], "reset_password")
    confirm = "/auth/password-reset/confirm"
    forged = token.rsplit(".", 1)[0] + ".Zm9yZ2VkIHNpZ25hdHVyZSBmb3IgdGhpcyB0b2tlbg"
    assert_problem(
        api.post(confirm, {"token": forged, "password": NEW_PASSWORD}), 400, "token_invalid"
    )
    weak = api.post(confirm, {"token": token, "password": "short"})
    assert "password" in assert_problem(weak, 422, "invalid_input")["errors"]
    done = api.post(confirm, {"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    again = api.post(confirm, {"token": token, "password": NEW_PASSWORD + "!"})
    assert_problem(again, 400, "token_used")
    # Every session ended with the reset; the new password logs in.
    assert_problem(
        api.post("/auth/refresh", {"refresh_token": user["refresh_token"]}), 401, "unauthorized"
    )
    wait_until(
        lambda: api.get("/me", token=user["access_token"]).status_code == 401,
        timeout=SESSION_BOUND,
        what="the old access token refused",
    )
    assert login(api, user["email"], NEW_PASSWORD).status_code == 200
    assert not api.mails.wait_for_none(ghost, "reset_password")

    # A link used after its hour: identity's clock two hours on.
    api.post("/auth/password-reset", {"email": user["email"]})
    late = api.mails.token(user["email"], "reset_password", count=2)
    clock = get_extension(api.identity_container, Clock)
    clock.clock = LateClock(timedelta(hours=2))
    try:
        expired = api.post(confirm, {"token": late, "password": NEW_PASSWORD + "?"})
    finally:
        clock.clock = SystemClock()
    assert_problem(expired, 400, "token_expired")


# -- sessions ------------------------------------------------------------------------


def test_logout_stops_the_access_token_at_once(api: Api):
    user = api.signup()
    assert api.get("/me", token=user["access_token"]).status_code == 200
    started = time.monotonic()
    assert api.post("/auth/logout", {"refresh_token": user["refresh_token"]}).status_code == 204
    assert_problem(api.get("/me", token=user["access_token"]), 401, "session_ended")
    assert time.monotonic() - started < SESSION_BOUND
    assert_problem(
        api.post("/auth/refresh", {"refresh_token": user["refresh_token"]}), 401, "unauthorized"
    )
    # Another session of the same account is not touched.
    other = login(api, user["email"]).json()
    assert api.get("/me", token=other["access_token"]).status_code == 200


def test_log_out_everywhere_ends_every_session(api: Api):
    user = api.signup()
    sessions = [user, login(api, user["email"]).json(), login(api, user["email"]).json()]
    assert api.post("/auth/logout-everywhere", token=user["access_token"]).status_code == 204
    for session in sessions:
        assert_problem(api.get("/me", token=session["access_token"]), 401, "session_ended")
        assert_problem(
            api.post("/auth/refresh", {"refresh_token": session["refresh_token"]}),
            401,
            "unauthorized",
        )
    fresh = login(api, user["email"]).json()  # logging in again works
    assert api.get("/me", token=fresh["access_token"]).status_code == 200


def test_two_tabs_refreshing_the_same_token_at_once_keep_the_session(api: Api):
    user = api.signup()
    answers: list[Any] = []

    def refresh() -> None:
        answers.append(api.post("/auth/refresh", {"refresh_token": user["refresh_token"]}))

    tabs = [threading.Thread(target=refresh) for _ in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    first, second = (a.json()["refresh_token"] for a in answers)
    assert first == second != user["refresh_token"]
    # A moment later, a third request with the old token (a slow tab): the same.
    late = api.post("/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert late.status_code == 200 and late.json()["refresh_token"] == first
    onwards = api.post("/auth/refresh", {"refresh_token": first})
    assert onwards.status_code == 200
    assert api.get("/me", token=onwards.json()["access_token"]).status_code == 200


# -- two-factor sign-in ---------------------------------------------------------------


def test_two_factor_sign_in_takes_each_code_once_and_recovery_codes_once(api: Api):
    user = api.signup()
    token = user["access_token"]
    assert api.get("/me/two-factor", token=token).json() == {
        "enabled": False,
        "pending": False,
        "required": False,
        "recovery_codes_left": 0,
    }
    wrong = api.post("/me/two-factor", {"current_password": "not my password!"}, token)
    assert_problem(wrong, 422, "invalid_input")
    app, recovery = api.enable_two_factor(user)
    assert len(recovery) == 10
    assert api.get("/me/two-factor", token=token).json()["recovery_codes_left"] == 10

    first = login(api, user["email"])
    problem = assert_problem(first, 401, "unauthorized")
    assert problem["reason"] == "two_factor_required" and "access_token" not in problem
    challenge = problem["challenge"]
    second = "/auth/login/two-factor"
    assert_problem(api.post(second, {"challenge": challenge}), 422, "invalid_input")
    forged = challenge[:-4] + ("AAAA" if not challenge.endswith("AAAA") else "BBBB")
    assert_problem(api.post(second, {"challenge": forged, "code": "123456"}), 400, "token_invalid")
    code = app.code()
    signed_in = api.post(second, {"challenge": challenge, "code": code})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["two_factor"] is True
    assert api.get("/me", token=signed_in.json()["access_token"]).status_code == 200
    # A challenge signs in once; a code is taken once, whatever the challenge.
    replayed = api.post(second, {"challenge": challenge, "code": code})
    assert_problem(replayed, 400, "token_invalid")

    def fresh() -> str:
        return str(login(api, user["email"]).json()["challenge"])

    assert_problem(api.post(second, {"challenge": fresh(), "code": code}), 422, "invalid_input")
    by_recovery = api.post(second, {"challenge": fresh(), "recovery_code": recovery[3]})
    assert by_recovery.status_code == 200, by_recovery.text
    again = api.post(second, {"challenge": fresh(), "recovery_code": recovery[3]})
    assert_problem(again, 422, "invalid_input")
    tokens = by_recovery.json()["access_token"]
    assert api.get("/me/two-factor", token=tokens).json()["recovery_codes_left"] == 9

    # Guessing is slowed down past five wrong codes (only who has the password gets here).
    guessing = fresh()
    statuses = [
        api.post(second, {"challenge": guessing, "code": "000000"}).status_code for _ in range(7)
    ]
    assert statuses[:4] == [422] * 4 and statuses[-1] == 429, statuses


def test_administrators_have_their_role_only_when_signed_in_with_a_second_factor(api: Api):
    someone = api.signup(["buyer"])
    user = api.signup(["buyer"])
    grant_admin(api.store, user["email"], "test-operator")
    plain = login(api, user["email"]).json()
    assert "admin" not in plain["roles"] and plain["withheld_roles"] == ["admin"]
    refused = api.delete(f"/users/{someone['user_id']}", token=plain["access_token"])
    assert assert_problem(refused, 403, "forbidden")["reason"] == "two_factor_required"
    assert api.get("/me/two-factor", token=plain["access_token"]).json()["required"] is True

    app, recovery = api.enable_two_factor({**user, **plain})
    admin = api.login_with_code(user["email"], app)
    assert "admin" in admin["roles"] and admin["withheld_roles"] == []
    body = {"current_password": PASSWORD, "recovery_code": recovery[0]}
    off = api.delete("/me/two-factor", admin["access_token"], json=body)
    assert assert_problem(off, 409, "conflict")["reason"] == "two_factor_required"
    erased = api.delete(f"/users/{someone['user_id']}", token=admin["access_token"])
    assert erased.status_code == 200, erased.text
