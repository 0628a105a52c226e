"""Identity's rules, with no broker, database or clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.identity import domain
from services.identity.domain import FileRecord, Session, User
from services.identity.profiles import completeness
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent


def decoded(event_type: str, data: dict) -> DecodedEvent:
    recorded = RecordedEvent(
        uuid.uuid4(),
        event_type,
        1,
        data,
        EventMetadata.root("u"),
        "user-1",
        0,
        1,
        datetime.now(UTC),
    )
    return DecodedEvent(recorded, data, 1)


def fold(events: list[tuple[str, dict]], evolve, state):
    for event_type, data in events:
        state = evolve(state, decoded(event_type, data))
    return state


def registered(roles=("seller",)) -> User:
    return fold(
        domain.register(User(), "u1", "Ann@Example.com", "hash", list(roles)),
        domain.evolve_user,
        User(),
    )


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("password1234", "too easy"),
        ("qwertyuiop123", "too easy"),
        ("password123", "too easy"),
        ("aaaaaaaaaaaaaa", "too easy"),
        ("annsmith-2024-xyz", "email"),
        ("x" * 300, "at most 256"),
    ],
)
def test_password_policy_explains_what_is_wrong(password, problem):
    problems = domain.password_problems(password, "annsmith@example.com")
    assert any(problem in p for p in problems), problems


def test_a_good_password_passes():
    assert domain.password_problems("correct horse battery", "ann@example.com") == []


def test_registration_normalises_the_email_and_roles():
    user = registered(roles=("seller", "buyer", "seller"))
    assert user.email == "ann@example.com"
    assert user.roles == ("buyer", "seller")
    with pytest.raises(Conflict):
        domain.register(user, "u1", "ann@example.com", "hash", ["buyer"])


def test_email_claim_streams_ignore_case_and_spaces():
    assert domain.email_claim_stream(" Ann@Example.COM ") == domain.email_claim_stream(
        "ann@example.com"
    )


def test_skills_are_normalised_and_deduplicated():
    events = domain.update_seller_profile(
        registered(), {"skills": ["Python", "python ", "PYTHON", "Go"]}
    )
    assert events == [("SellerSkillsSet", {"skills": ["python", "go"]})]


def test_unchanged_profile_fields_record_nothing():
    user = fold(
        domain.update_seller_profile(registered(), {"headline": "Dev"}),
        domain.evolve_user,
        registered(),
    )
    assert domain.update_seller_profile(user, {"headline": "Dev"}) == []


def test_editing_a_buyer_profile_makes_a_seller_a_buyer_too():
    events = domain.update_buyer_profile(registered(), {"company_name": "Acme"})
    assert events == [
        ("RoleAdded", {"role": "buyer"}),
        ("BuyerProfileUpdated", {"company_name": "Acme"}),
    ]


def test_photo_must_be_the_users_own_image():
    with pytest.raises(InvalidInput):
        domain.update_seller_profile(registered(), {"photo_file_id": "f1"}, owned_photo=False)


def test_experience_cannot_end_before_it_starts():
    with pytest.raises(InvalidInput):
        domain.add_experience(
            registered(),
            "e1",
            {
                "title": "Dev",
                "organisation": "Acme",
                "start_date": date(2024, 1, 1),
                "end_date": date(2023, 1, 1),
            },
        )
    with pytest.raises(NotFound):
        domain.remove_experience(registered(), "missing")


def test_portfolio_items_only_show_own_files():
    item = {"title": "Site", "file_ids": ["mine", "theirs"]}
    with pytest.raises(InvalidInput, match="files you uploaded"):
        domain.add_portfolio_item(registered(), "p1", item, owned_files={"mine"})


def test_completeness_lists_what_is_missing():
    user = fold(
        domain.update_seller_profile(registered(), {"headline": "Dev", "skills": ["python"]}),
        domain.evolve_user,
        registered(),
    )
    seller = completeness(user)["seller"]
    assert seller["percent"] == round(100 * 2 / 7)
    assert seller["missing"] == ["bio", "hourly_rate", "photo", "experience", "portfolio"]


def test_refresh_rotates_and_reuse_revokes_the_session():
    now = datetime.now(UTC)
    later = now + timedelta(days=30)
    session = fold(
        [
            (
                "SessionStarted",
                {"session_id": "s1", "user_id": "u1", "token_hash": "h1", "expires_at": later},
            )
        ],
        domain.evolve_session,
        Session(),
    )
    events, ok = domain.refresh_session(session, "h1", "h2", now, later)
    assert ok and events == [("SessionRefreshed", {"token_hash": "h2", "expires_at": later})]
    rotated = fold(events, domain.evolve_session, session)
    assert rotated.generation == 1 and rotated.previous_hash == "h1"
    # A second tab with the same token a moment later: taken, nothing changes.
    assert domain.refresh_session(rotated, "h1", "h3", now, later) == ([], True)
    # The same token after the grace: it was copied.
    after_grace = now + domain.REFRESH_GRACE + timedelta(seconds=2)
    events, ok = domain.refresh_session(rotated, "h1", "h3", after_grace, later)
    assert not ok and events == [("SessionRevoked", {"reason": "refresh token reused"})]
    revoked = fold(events, domain.evolve_session, rotated)
    assert domain.refresh_session(revoked, "h2", "h4", now, later) == ([], False)


def test_expired_session_cannot_refresh():
    now = datetime.now(UTC)
    session = Session("s1", "u1", "h1", now - timedelta(seconds=1))
    assert domain.refresh_session(session, "h1", "h2", now, now) == ([], False)


def test_who_may_download():
    public = FileRecord("f1", "owner", visibility="public")
    private = FileRecord("f2", "owner", visibility="private", readers=frozenset({"friend"}))
    assert domain.may_download(public, None)
    assert domain.may_download(private, "owner") and domain.may_download(private, "friend")
    assert not domain.may_download(private, "stranger") and not domain.may_download(private, None)
    assert domain.visibility_for("photo") == "public"
    assert domain.visibility_for("deliverable") == "private"


def test_a_changed_address_voids_every_link_mailed_before_it():
    """A link to an address the user typed wrongly, or a reset sent to the old
    one, must not take the account back after the change."""
    later = datetime.now(UTC) + timedelta(hours=1)
    mailed = [
        (
            "EmailVerificationRequested",
            {"request_id": rid, "email": to, "token_hash": "h", "expires_at": later},
        )
        for rid, to in (("typo", "b@example.com"), ("right", "c@example.com"))
    ]
    reset = (
        "PasswordResetRequested",
        {"request_id": "r1", "email": "ann@example.com", "token_hash": "h", "expires_at": later},
    )
    changed = (
        "EmailChanged",
        {"request_id": "right", "email": "c@example.com", "previous_email": "ann@example.com"},
    )
    user = fold([*mailed, reset, changed], domain.evolve_user, registered())
    assert user.email == "c@example.com"
    assert all(v.used for v in user.verifications.values())
    assert all(r.used for r in user.resets.values())


def test_a_password_the_strength_estimator_fails_on_is_judged_by_length(monkeypatch):
    def failing(password, user_inputs=()):
        raise IndexError("list index out of range")  # zxcvbn's, on some inputs

    monkeypatch.setattr(domain, "zxcvbn", failing)
    assert domain.password_problems("a long enough passphrase", "ann@example.com") == []
    assert domain.password_problems("short", "ann@example.com") == ["Use at least 12 characters."]


def test_attachments_are_shared_by_their_owner_only_and_once():
    brief = domain.FileRecord("f1", "buyer", purpose="attachment")
    assert domain.grant_file_access(brief, "stranger", domain.ANYONE) == []
    granted = domain.grant_file_access(brief, "buyer", domain.ANYONE)
    assert granted == [("FileAccessGranted", {"user_id": domain.ANYONE})]
    shared = domain.FileRecord("f1", "buyer", purpose="attachment", readers=frozenset({"*"}))
    assert domain.may_download(shared, None) and domain.may_download(shared, "anyone")
    assert domain.grant_file_access(shared, "buyer", "seller") == []  # read by all already
    assert domain.grant_file_access(domain.FileRecord(), "buyer", "seller") == []  # no such file


def test_a_buyer_saves_a_seller_once_and_unsaves_them():
    buyer = fold(
        domain.register(User(), "b1", "buyer@example.com", "hash", ["buyer"]),
        domain.evolve_user,
        User(),
    )
    seller = fold(
        domain.register(User(), "s1", "seller@example.com", "hash", ["seller"]),
        domain.evolve_user,
        User(),
    )
    saved = domain.save_freelancer(buyer, seller)
    assert saved == [("FreelancerSaved", {"seller_id": "s1"})]
    buyer = fold(saved, domain.evolve_user, buyer)
    assert buyer.saved_freelancers == {"s1"}
    assert domain.save_freelancer(buyer, seller) == []  # saving again changes nothing
    unsaved = domain.unsave_freelancer(buyer, "s1")
    assert unsaved == [("FreelancerUnsaved", {"seller_id": "s1"})]
    buyer = fold(unsaved, domain.evolve_user, buyer)
    assert buyer.saved_freelancers == frozenset()
    assert domain.unsave_freelancer(buyer, "s1") == []


def test_only_a_buyer_saves_and_only_an_existing_seller_is_saved():
    buyer = fold(
        domain.register(User(), "b1", "buyer@example.com", "hash", ["buyer", "seller"]),
        domain.evolve_user,
        User(),
    )
    seller = registered(("seller",))
    with pytest.raises(Forbidden):
        domain.save_freelancer(seller, buyer)  # a seller is no buyer
    with pytest.raises(NotFound):
        domain.save_freelancer(buyer, User())
    erased = fold(
        [("PersonalDataErased", {"user_id": "u1", "erased_by": "u1"})],
        domain.evolve_user,
        seller,
    )
    with pytest.raises(NotFound):
        domain.save_freelancer(buyer, erased)
    with pytest.raises(InvalidInput):
        domain.save_freelancer(buyer, registered(("buyer",)))  # not a seller
    with pytest.raises(InvalidInput):
        domain.save_freelancer(buyer, buyer)  # not oneself
    full = replace(buyer, saved_freelancers=frozenset(map(str, range(500))))
    with pytest.raises(Conflict):
        domain.save_freelancer(full, seller)
