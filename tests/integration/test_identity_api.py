"""Accounts, profiles and files through the gateway's HTTP API, against real
identity and gateway containers, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import random
import re
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from nameko.testing.utils import get_extension

from gateway.service import GatewayService
from services.identity.admin import grant_admin
from services.identity.service import IdentityService
from shared.clock import Clock, FixedClock, SystemClock
from shared.config import settings
from shared.eventstore.sql import SqlEventStore
from shared.testing import free_port, fresh_postgres_database
from tests.integration.helpers import Authenticator, wait_until
from tests.integration.mail import MailCatcher

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
SECRET = "test-secret-" + "x" * 40


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x00\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


SIGN_UPS = 5
"""Sign-ups an hour from one address, for these tests (127.0.0.1 signs up many)."""


class LateClock(SystemClock):
    """Identity's clock, ``by`` ahead of the real one."""

    def __init__(self, by: timedelta) -> None:
        self.by = by

    def now(self) -> datetime:
        return super().now() + self.by


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class Api:
    def __init__(
        self,
        base: str,
        store: SqlEventStore,
        internal: str = "",
        mails: MailCatcher | None = None,
    ) -> None:
        self.base = base
        self.store = store
        self.internal = internal
        """The gateway's internal port: /metrics and every service's health."""
        self.mails = mails

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1{path}"

    def post(
        self, path: str, json: Any = None, token: str | None = None, **kw: Any
    ) -> requests.Response:
        return requests.post(
            self.url(path), json=json, headers=self._headers(token, kw), timeout=30, **kw
        )

    def patch(self, path: str, json: Any, token: str | None = None) -> requests.Response:
        return requests.patch(
            self.url(path), json=json, headers=self._headers(token, {}), timeout=30
        )

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return requests.get(self.url(path), headers=self._headers(token, kw), timeout=30, **kw)

    def delete(self, path: str, token: str | None = None, json: Any = None) -> requests.Response:
        return requests.delete(
            self.url(path), json=json, headers=self._headers(token, {}), timeout=30
        )

    @staticmethod
    def _headers(token: str | None, kw: dict[str, Any]) -> dict[str, str]:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    @staticmethod
    def new_client_address() -> str:
        """Every user signs up from a client of their own (the sign-up limit
        counts per address)."""
        return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"

    def signup(
        self,
        roles: list[str] = ["seller"],  # noqa: B006
        email: str | None = None,
        verified: bool = True,
    ) -> dict[str, Any]:
        """Sign up and log in; ``verified``: first follow the link mailed to the
        address, as its owner would."""
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        response = self.post(
            "/auth/register",
            {"email": email, "password": PASSWORD, "roles": roles},
            headers={"X-Forwarded-For": self.new_client_address()},
        )
        assert response.status_code == 201, response.text
        if verified:
            self.verify_email(email)
        tokens = self.post("/auth/login", {"email": email, "password": PASSWORD}).json()
        return {**response.json(), **tokens, "email": email}

    def enable_two_factor(self, user: dict[str, Any]) -> tuple[Authenticator, list[str]]:
        """Turn on two-factor sign-in as a person would: (their app, recovery codes)."""
        token = user["access_token"]
        setup = self.post("/me/two-factor", {"current_password": PASSWORD}, token)
        assert setup.status_code == 201, setup.text
        app = Authenticator(setup.json()["secret"])
        confirmed = self.post("/me/two-factor/confirm", {"code": app.code()}, token)
        assert confirmed.status_code == 200, confirmed.text
        return app, confirmed.json()["recovery_codes"]

    def login_with_code(self, email: str, app: Authenticator) -> dict[str, Any]:
        first = self.post("/auth/login", {"email": email, "password": PASSWORD})
        assert first.status_code == 401 and first.json()["code"] == "unauthorized", first.text
        challenge = first.json()["challenge"]
        answer = self.post("/auth/login/two-factor", {"challenge": challenge, "code": app.code()})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def admin(self) -> dict[str, Any]:
        """An administrator, signed in with a second factor (their role needs it)."""
        user = self.signup(["buyer"])
        grant_admin(self.store, user["email"], "test-operator")
        app, _ = self.enable_two_factor(user)
        tokens = self.login_with_code(user["email"], app)
        assert "admin" in tokens["roles"], tokens
        return {**user, **tokens, "authenticator": app}

    def verify_email(self, email: str, count: int = 1) -> requests.Response:
        assert self.mails is not None, "this fixture has no mail catcher"
        token = self.mails.token(email, "verify_email", count)
        answer = self.post("/auth/verify-email", {"token": token})
        assert answer.status_code == 200, answer.text
        return answer

    def upload(
        self, token: str, content: bytes, purpose: str, name: str = "f.png", key: str = ""
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if key:
            headers["Idempotency-Key"] = key
        return requests.post(
            self.url("/files"),
            headers=headers,
            files={"file": (name, content)},
            data={"purpose": purpose},
            timeout=30,
        )


@pytest.fixture
def api(
    fresh_pg: str,
    postgres_server: str,
    amqp_uri: str,
    tmp_path: Path,
    container_factory: Any,
    mail_catcher: MailCatcher,
) -> Iterator[Api]:
    with fresh_postgres_database(postgres_server) as gateway_db:
        port, internal = free_port(), free_port()
        common = {"AMQP_URI": amqp_uri, "EVENT_STORE_URL": fresh_pg, "JWT_SECRET": SECRET}
        identity = container_factory(
            IdentityService,
            {
                **common,
                "DATABASE_URL": fresh_pg,
                "SMTP_URL": mail_catcher.url,
                "SIGN_UPS_PER_ADDRESS_HOUR": SIGN_UPS,
            },
        )
        identity.start()
        container_factory(
            GatewayService,
            {
                **common,
                "DATABASE_URL": gateway_db,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "GATEWAY_INTERNAL_ADDRESS": f"127.0.0.1:{internal}",
                "BLOB_DIR": str(tmp_path / "blobs"),
                "UPLOAD_MAX_BYTES": 200_000,
                "TRUSTED_PROXY_HOPS": 1,
            },
        ).start()
        store = SqlEventStore(fresh_pg)
        api = Api(f"http://127.0.0.1:{port}", store, f"http://127.0.0.1:{internal}", mail_catcher)
        api.identity_container = identity
        yield api
        store.close()


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert "Traceback" not in response.text
    return body


# -- sign-up -------------------------------------------------------------------


def test_sign_up_as_buyer_seller_or_both(api: Api):
    for roles in (["buyer"], ["seller"], ["seller", "buyer"]):
        email = f"Mixed.Case-{uuid.uuid4().hex[:6]}@Example.COM"
        response = api.post(
            "/auth/register", {"email": email, "password": PASSWORD, "roles": roles}
        )
        assert response.status_code == 201
        body = response.json()
        assert body["email"] == email.lower()
        assert body["roles"] == sorted(roles)
        uuid.UUID(body["user_id"])


def test_the_same_email_twice_is_a_conflict_whatever_its_case(api: Api):
    email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
    assert (
        api.post(
            "/auth/register", {"email": email, "password": PASSWORD, "roles": ["buyer"]}
        ).status_code
        == 201
    )
    again = api.post(
        "/auth/register", {"email": email.upper(), "password": PASSWORD, "roles": ["seller"]}
    )
    assert assert_problem(again, 409, "conflict")["reason"] == "email_taken"


def test_racing_sign_ups_for_one_email_exactly_one_wins(api: Api):
    email = f"race-{uuid.uuid4().hex[:6]}@example.com"
    statuses: list[int] = []

    def sign_up() -> None:
        body = {"email": email, "password": PASSWORD, "roles": ["seller"]}
        client = {"X-Forwarded-For": api.new_client_address()}  # eight people
        statuses.append(api.post("/auth/register", body, headers=client).status_code)

    threads = [threading.Thread(target=sign_up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 7


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "a@example.com", "password": "short", "roles": ["buyer"]}, {"password"}),
        ({"email": "not-an-email", "password": PASSWORD, "roles": ["buyer"]}, {"email"}),
        ({"email": "a@example.com", "password": PASSWORD, "roles": ["pilot"]}, {"roles"}),
        ({"email": "a@example.com", "password": PASSWORD, "roles": []}, {"roles"}),
        ({"email": "a@example.com", "password": PASSWORD}, {"roles"}),
        (
            {"email": "a@example.com", "password": PASSWORD, "roles": ["buyer"], "admin": True},
            {"admin"},
        ),
    ],
)
def test_bad_sign_ups_get_422_with_per_field_messages(api: Api, body, fields):
    problem = assert_problem(api.post("/auth/register", body), 422, "invalid_input")
    assert set(problem["errors"]) == fields


def test_bodies_that_are_not_json_objects(api: Api):
    not_json = requests.post(
        api.url("/auth/register"),
        data="{oops",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_problem(not_json, 400, "invalid_json")
    form = requests.post(api.url("/auth/register"), data={"email": "x"}, timeout=10)
    assert_problem(form, 415, "unsupported_media_type")
    assert_problem(api.post("/auth/register", ["a", "list"]), 422, "invalid_input")
    assert_problem(api.get("/no/such/endpoint"), 404, "not_found")


# -- sessions -------------------------------------------------------------------


def test_login_refresh_rotation_and_logout(api: Api):
    user = api.signup()
    assert user["token_type"] == "Bearer" and user["expires_in"] == 900
    assert api.get("/me", token=user["access_token"]).status_code == 200

    rotated = api.post("/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh_token"] != user["refresh_token"]
    assert api.get("/me", token=new["access_token"]).status_code == 200

    assert api.post("/auth/logout", {"refresh_token": new["refresh_token"]}).status_code == 204
    assert_problem(
        api.post("/auth/refresh", {"refresh_token": new["refresh_token"]}), 401, "unauthorized"
    )


def test_reusing_a_rotated_refresh_token_revokes_the_session(api: Api):
    user = api.signup()
    first = user["refresh_token"]
    second = api.post("/auth/refresh", {"refresh_token": first}).json()["refresh_token"]
    # Presented again a minute later (identity's clock moved on): past the
    # grace a second tab gets (see test_accounts_api), so a copy.
    clock = get_extension(api.identity_container, Clock)
    clock.clock = LateClock(timedelta(minutes=1))
    try:
        reused = api.post("/auth/refresh", {"refresh_token": first})
    finally:
        clock.clock = SystemClock()
    assert_problem(reused, 401, "unauthorized")
    # the thief's replay also ended the legitimate holder's session
    assert_problem(api.post("/auth/refresh", {"refresh_token": second}), 401, "unauthorized")


def test_wrong_password_and_unknown_email_look_the_same(api: Api):
    user = api.signup()
    wrong = assert_problem(
        api.post("/auth/login", {"email": user["email"], "password": "nope nope nope"}),
        401,
        "unauthorized",
    )
    unknown = assert_problem(
        api.post(
            "/auth/login",
            {"email": f"ghost-{uuid.uuid4().hex[:6]}@example.com", "password": "nope nope nope"},
        ),
        401,
        "unauthorized",
    )
    assert wrong == unknown


def login_from(api: Api, address: str, email: str, password: str) -> requests.Response:
    """A login from a client at ``address``, as the trusted proxy in front of the
    gateway reports it (the gateway under test trusts one hop)."""
    return api.post(
        "/auth/login",
        {"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def frozen_identity_clock(api: Api) -> FixedClock:
    """Identity's clock stopped: a throttle's waits last until the test moves it."""
    clock = get_extension(api.identity_container, Clock)
    clock.clock = FixedClock(datetime.now(UTC))
    return clock.clock


def test_failures_on_one_account_from_one_address_make_it_wait_longer_each_time(api: Api):
    user = api.signup()
    clock = frozen_identity_clock(api)
    for _ in range(5):
        assert login_from(api, "203.0.113.5", user["email"], "wrong password!").status_code == 401
    first = login_from(api, "203.0.113.5", user["email"], PASSWORD)
    assert_problem(first, 429, "too_many_requests")
    assert int(first.headers["Retry-After"]) == 2  # 1 s, rounded up
    # The owner elsewhere is not slowed down by a stranger's guessing.
    assert login_from(api, "198.51.100.7", user["email"], PASSWORD).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert login_from(api, "203.0.113.5", user["email"], "wrong again!!").status_code == 401
    second = login_from(api, "203.0.113.5", user["email"], PASSWORD)
    assert_problem(second, 429, "too_many_requests")
    assert int(second.headers["Retry-After"]) == 3  # then 2 s
    clock.advance(timedelta(seconds=2))
    assert login_from(api, "203.0.113.5", user["email"], PASSWORD).status_code == 200


def test_twenty_failures_from_one_address_lock_out_no_other_account_or_address(api: Api):
    victim, other = api.signup(), api.signup()
    frozen_identity_clock(api)  # (after the sign-ups: their mails go out by the clock)
    for i in range(20):
        email = victim["email"] if i % 2 else f"spray-{i}-{uuid.uuid4().hex[:4]}@example.com"
        login_from(api, "203.0.113.9", email, "guess guess 1")
    # (first, while the guesser's own wait lasts) A header the client adds left
    # of the proxy's is not believed.
    spoofed = api.post(
        "/auth/login",
        {"email": victim["email"], "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.8, 203.0.113.9"},
    )
    assert_problem(spoofed, 429, "too_many_requests")
    assert login_from(api, "198.51.100.8", victim["email"], PASSWORD).status_code == 200
    assert login_from(api, "203.0.113.9", other["email"], PASSWORD).status_code == 200


def test_one_address_spraying_many_accounts_is_slowed_down(api: Api):
    for i in range(50):
        email = f"spray-{i}-{uuid.uuid4().hex[:4]}@example.com"
        login_from(api, "203.0.113.77", email, "guess guess 1")
    blocked = login_from(api, "203.0.113.77", "anyone@example.com", PASSWORD)
    assert_problem(blocked, 429, "too_many_requests")
    assert int(blocked.headers["Retry-After"]) > 0
    assert login_from(api, "198.51.100.9", "anyone@example.com", PASSWORD).status_code == 401


def test_sign_ups_from_one_address_are_limited(api: Api):
    def sign_up(address: str) -> requests.Response:
        email = f"many-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "roles": ["buyer"]}
        return api.post("/auth/register", body, headers={"X-Forwarded-For": address})

    assert all(sign_up("203.0.113.20").status_code == 201 for _ in range(SIGN_UPS))
    assert_problem(sign_up("203.0.113.20"), 429, "too_many_requests")
    assert sign_up("203.0.113.21").status_code == 201


def test_requests_without_or_with_bad_tokens_are_401(api: Api):
    assert_problem(api.get("/me"), 401, "unauthorized")
    assert_problem(api.get("/me", token="not.a.jwt"), 401, "unauthorized")
    forged = api.signup()["access_token"][:-4] + "AAAA"
    assert_problem(api.get("/me", token=forged), 401, "unauthorized")


# -- profiles -------------------------------------------------------------------


def test_seller_profile_round_trip_public_and_private_views(api: Api):
    seller = api.signup(["seller"])
    uid, token = seller["user_id"], seller["access_token"]
    photo = api.upload(token, png(), "photo").json()
    changed = api.patch(
        f"/users/{uid}/seller-profile",
        {
            "headline": "Python developer",
            "bio": "I build APIs.",
            "skills": ["Python", "python ", "PYTHON", "PostgreSQL"],
            "hourly_rate": {"amount": 6500, "currency": "EUR"},
            "photo_file_id": photo["file_id"],
        },
        token,
    )
    assert changed.status_code == 200, changed.text
    own = changed.json()
    assert own["seller"]["skills"] == ["python", "postgresql"]
    assert own["seller"]["hourly_rate"] == {"amount": 6500, "currency": "EUR"}
    assert own["email"] == seller["email"]
    assert own["completeness"]["seller"]["missing"] == ["experience", "portfolio"]

    exp = api.post(
        f"/users/{uid}/experience",
        {"title": "Engineer", "organisation": "Acme", "start_date": "2020-01-01"},
        token,
    )
    assert exp.status_code == 201
    sample = api.upload(token, PDF, "portfolio", "case-study.pdf").json()
    item = api.post(
        f"/users/{uid}/portfolio",
        {
            "title": "Shop API",
            "links": ["https://example.com/shop"],
            "file_ids": [sample["file_id"]],
        },
        token,
    )
    assert item.status_code == 201, item.text
    assert item.json()["completeness"]["seller"] == {"percent": 100, "missing": []}

    def public_view() -> Any:
        body = api.get(f"/users/{uid}/profile").json()
        return body if body.get("seller", {}).get("portfolio") else None

    public = wait_until(public_view, what="read model caught up")
    assert "email" not in public and "completeness" not in public
    assert public["seller"]["headline"] == "Python developer"
    assert public["seller"]["experience"][0]["organisation"] == "Acme"
    assert public["seller"]["portfolio"][0]["file_ids"] == [sample["file_id"]]
    me = api.get(f"/users/{uid}/profile", token=token).json()
    assert me["email"] == seller["email"] and me["completeness"]["seller"]["percent"] == 100

    experience_id = public["seller"]["experience"][0]["experience_id"]
    removed = api.delete(f"/users/{uid}/experience/{experience_id}", token)
    assert removed.status_code == 200 and removed.json()["seller"]["experience"] == []
    assert_problem(api.delete(f"/users/{uid}/experience/{experience_id}", token), 404, "not_found")


def test_buyer_profile_and_its_validation(api: Api):
    buyer = api.signup(["buyer"])
    uid, token = buyer["user_id"], buyer["access_token"]
    ok = api.patch(
        f"/users/{uid}/buyer-profile",
        {
            "company_name": "Acme",
            "company_size": "11-50",
            "industry": "Retail",
            "website": "https://acme.example",
            "project_types": ["web"],
        },
        token,
    )
    assert ok.status_code == 200
    assert ok.json()["buyer"]["company_size"] == "11-50"
    bad = api.patch(
        f"/users/{uid}/buyer-profile", {"company_size": "huge", "website": "ftp://x"}, token
    )
    assert set(assert_problem(bad, 422, "invalid_input")["errors"]) == {"company_size", "website"}
    money = api.patch(
        f"/users/{uid}/seller-profile", {"hourly_rate": {"amount": 10.5, "currency": "usd"}}, token
    )
    assert set(assert_problem(money, 422, "invalid_input")["errors"]["hourly_rate"]) == {
        "amount",
        "currency",
    }
    dates = api.post(
        f"/users/{uid}/experience",
        {"title": "x", "organisation": "y", "start_date": "2022-01-01", "end_date": "2021-01-01"},
        token,
    )
    assert "end_date" in assert_problem(dates, 422, "invalid_input")["errors"]


def test_nobody_changes_someone_elses_profile(api: Api):
    owner, other = api.signup(), api.signup()
    attempt = api.patch(
        f"/users/{owner['user_id']}/seller-profile", {"headline": "hacked"}, other["access_token"]
    )
    assert_problem(attempt, 403, "forbidden")
    assert_problem(
        api.patch(f"/users/{owner['user_id']}/seller-profile", {"headline": "x"}),
        401,
        "unauthorized",
    )
    theirs = api.upload(other["access_token"], PDF, "portfolio", "x.pdf").json()
    mine = api.post(
        f"/users/{owner['user_id']}/portfolio",
        {"title": "t", "file_ids": [theirs["file_id"]]},
        owner["access_token"],
    )
    assert "file_ids" in assert_problem(mine, 422, "invalid_input")["errors"]
    assert_problem(api.get(f"/users/{uuid.uuid4()}/profile"), 404, "not_found")


# -- files -----------------------------------------------------------------------


def test_upload_and_download_public_and_private_files(api: Api):
    owner, stranger = api.signup(), api.signup()
    image = png(3, 2)
    photo = api.upload(owner["access_token"], image, "photo", "me.png")
    assert photo.status_code == 201
    record = photo.json()
    assert record["content_type"] == "image/png" and record["size"] == len(image)
    assert record["visibility"] == "public"
    download = api.get(f"/files/{record['file_id']}/content")
    assert download.status_code == 200 and download.content == image
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"

    private = api.upload(owner["access_token"], PDF, "deliverable", "spec.pdf").json()
    assert private["visibility"] == "private"
    assert (
        api.get(f"/files/{private['file_id']}/content", token=owner["access_token"]).content == PDF
    )
    assert_problem(
        api.get(f"/files/{private['file_id']}/content", token=stranger["access_token"]),
        403,
        "forbidden",
    )
    assert_problem(api.get(f"/files/{private['file_id']}/content"), 403, "forbidden")
    assert_problem(api.get(f"/files/{uuid.uuid4()}/content"), 404, "not_found")
    assert_problem(api.get("/files/not-a-uuid/content"), 404, "not_found")


def test_upload_limits_type_checks_and_missing_parts(api: Api):
    token = api.signup()["access_token"]
    just_over = assert_problem(
        api.upload(token, b"x" * 200_001, "attachment", "big.txt"), 413, "file_too_large"
    )
    assert just_over["max_bytes"] == 200_000
    assert_problem(
        api.upload(token, b"x" * 400_000, "attachment", "huge.txt"), 413, "request_entity_too_large"
    )
    assert api.upload(token, b"x" * 200_000, "attachment", "exact.txt").status_code == 201
    problem = assert_problem(
        api.upload(token, PDF, "photo", "photo.png"), 415, "unsupported_file_type"
    )
    assert problem["detected"] == "application/pdf"
    assert_problem(
        api.upload(token, b"\x00\x01\x02binary", "attachment", "x.bin"),
        415,
        "unsupported_file_type",
    )
    assert_problem(api.upload(token, png(), "spaceship"), 422, "invalid_input")
    no_file = requests.post(
        api.url("/files"),
        headers={"Authorization": f"Bearer {token}"},
        data={"purpose": "photo"},
        timeout=10,
    )
    assert_problem(no_file, 422, "invalid_input")
    assert_problem(api.upload("", png(), "photo"), 401, "unauthorized")


def test_listing_own_files_with_cursor_pagination(api: Api):
    token = api.signup()["access_token"]
    uploaded = [api.upload(token, png(i + 1, 1), "portfolio").json()["file_id"] for i in range(3)]

    def first_page() -> Any:
        body = api.get("/files?limit=2", token=token).json()
        return body if len(body["items"]) == 2 and body["next_cursor"] else None

    page1 = wait_until(first_page, what="files in the read model")
    page2 = api.get(f"/files?limit=2&cursor={page1['next_cursor']}", token=token).json()
    assert page2["next_cursor"] is None
    listed = [f["file_id"] for f in page1["items"] + page2["items"]]
    assert sorted(listed) == sorted(uploaded) and len(set(listed)) == 3
    assert_problem(api.get("/files?cursor=!!!", token=token), 422, "invalid_input")
    assert_problem(api.get("/files?limit=0", token=token), 422, "invalid_input")


# -- conventions -----------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(api: Api):
    email = f"idem-{uuid.uuid4().hex[:6]}@example.com"
    body = {"email": email, "password": PASSWORD, "roles": ["buyer"]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/auth/register", body, headers=dict(key))
    again = api.post("/auth/register", body, headers=dict(key))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    different = api.post("/auth/register", {**body, "roles": ["seller"]}, headers=dict(key))
    assert assert_problem(different, 422, "invalid_input")["reason"] == "idempotency_key_reused"


def test_a_retried_upload_is_the_same_request_though_its_multipart_boundary_is_new(api: Api):
    """requests, like browsers, draws a new boundary per send: the bytes differ."""
    token = api.signup()["access_token"]
    key = uuid.uuid4().hex
    first = api.upload(token, PDF, "attachment", "brief.pdf", key=key)
    again = api.upload(token, PDF, "attachment", "brief.pdf", key=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["file_id"] == first.json()["file_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.upload(token, PDF + b"%", "attachment", "brief.pdf", key=key)
    assert assert_problem(other, 422, "invalid_input")["reason"] == "idempotency_key_reused"
    renamed = api.upload(token, PDF, "attachment", "other.pdf", key=key)
    assert assert_problem(renamed, 422, "invalid_input")["reason"] == "idempotency_key_reused"


def test_a_creation_says_where_it_is_and_nothing_written_or_personal_is_kept_by_caches(api: Api):
    email = f"loc-{uuid.uuid4().hex[:6]}@example.com"
    created = api.post(
        "/auth/register", {"email": email, "password": PASSWORD, "roles": ["seller"]}
    )
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location == f"/api/v1/users/{created.json()['user_id']}/profile"
    profile = wait_until(
        lambda: (r := requests.get(api.base + location, timeout=10)).ok and r.json(),
        what="the created user's profile",
    )
    assert profile["user_id"] == created.json()["user_id"]
    assert created.headers["Cache-Control"] == "no-store"
    tokens = api.post("/auth/login", {"email": email, "password": PASSWORD})
    assert tokens.status_code == 200 and "access_token" in tokens.json()
    assert tokens.headers["Cache-Control"] == "no-store"
    assert tokens.headers["X-Content-Type-Options"] == "nosniff"
    me = api.get("/me", token=tokens.json()["access_token"])
    assert me.status_code == 200 and me.headers["Cache-Control"] == "private, no-cache"
    assert "Strict-Transport-Security" not in tokens.headers  # plain HTTP: no promise
    over_tls = api.get(
        "/me", token=tokens.json()["access_token"], headers={"X-Forwarded-Proto": "https"}
    )
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    docs = requests.get(f"{api.base}/docs", timeout=10)
    policy = docs.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert docs.headers["X-Frame-Options"] == "DENY"


def test_request_id_is_returned_and_becomes_the_events_correlation_id(api: Api):
    email = f"rid-{uuid.uuid4().hex[:6]}@example.com"
    response = api.post(
        "/auth/register",
        {"email": email, "password": PASSWORD, "roles": ["buyer"]},
        headers={"X-Request-ID": "req-abc-123"},
    )
    assert response.headers["X-Request-ID"] == "req-abc-123"
    registered, verification = api.store.read_stream(f"user-{response.json()['user_id']}")
    assert registered.metadata.correlation_id == "req-abc-123"
    event = verification
    assert event.metadata.correlation_id == "req-abc-123"
    assert event.metadata.source == "identity"
    generated = api.get("/me").headers["X-Request-ID"]
    uuid.UUID(generated)


def test_openapi_document_docs_page_and_metrics(api: Api):
    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/users/{user_id}/seller-profile" in document["paths"]
    register = document["paths"]["/api/v1/auth/register"]["post"]
    assert "RegisterRequest" in str(register["requestBody"])
    assert "422" in register["responses"]
    assert "bearer" in document["components"]["securitySchemes"]
    page = requests.get(f"{api.base}/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    asset = requests.get(f"{api.base}/docs/static/swagger-ui-bundle.js", timeout=10)
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert requests.get(f"{api.base}/docs/static/..%2Fetc", timeout=10).status_code == 404
    metrics = requests.get(f"{api.internal}/metrics", timeout=10).text
    assert 'route="/api/v1/openapi.json"' not in metrics  # only declared API routes are timed
    assert "gateway_http_requests_total" in metrics


def test_cors_for_configured_origins(api: Api, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example")
    settings.cache_clear()
    try:
        allowed = requests.options(
            api.url("/auth/login"),
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert allowed.status_code == 204
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Idempotency-Key" in allowed.headers["Access-Control-Allow-Headers"]
        other = requests.get(api.url("/me"), headers={"Origin": "https://evil.example"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        monkeypatch.delenv("CORS_ORIGINS")
        settings.cache_clear()


def cache_lookups(api: Api, outcome: str, route: str = "/api/v1/users/<user_id>/profile") -> float:
    """The gateway's count of reads of ``route`` with this cache outcome."""
    text = requests.get(f"{api.internal}/metrics", timeout=10).text
    labels = rf'outcome="{outcome}",route="{re.escape(route)}"'
    pattern = rf"gateway_response_cache_total\{{{labels}\}} (\S+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_profile_reads_are_kept_until_the_view_moves_and_revalidate_by_etag(api: Api):
    seller = api.signup(["seller"])
    uid, token = seller["user_id"], seller["access_token"]
    path = f"/users/{uid}/profile"
    first = wait_until(lambda: (r := api.get(path)).status_code == 200 and r, what="profile")
    hits = cache_lookups(api, "hit")
    again = api.get(path)
    assert again.status_code == 200 and again.content == first.content
    etag = again.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, no-cache"
    if etag == first.headers["ETag"]:  # no event arrived in between: served from memory
        assert cache_lookups(api, "hit") == hits + 1

    not_modified = api.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["ETag"] == etag

    own = api.get(path, token)  # the owner sees private fields: another answer
    assert own.json()["email"] == seller["email"] and "email" not in again.json()
    assert own.headers["ETag"] != etag

    changed = api.patch(f"{path.rsplit('/', 1)[0]}/seller-profile", {"headline": "Rust dev"}, token)
    assert changed.status_code == 200, changed.text
    fresh = wait_until(
        lambda: (r := api.get(path)).json()["seller"].get("headline") == "Rust dev" and r,
        what="the new headline in the anonymous view",
    )
    assert fresh.headers["ETag"] != etag
    revalidated = api.get(path, headers={"If-None-Match": etag})
    assert revalidated.status_code == 200 and revalidated.json()["seller"]["headline"] == "Rust dev"
