"""Identity's rules as pure functions: ``evolve`` folds events into state,
the decision functions return the events a command produces, or raise.
No I/O here: hashing, clocks and ids come in as arguments."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from zxcvbn import zxcvbn

from services.identity import two_factor
from services.identity.profiles import Profile
from services.identity.two_factor import TwoFactor
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
from shared.schemas import EventView
from shared.skills import normalize_skills

EventSpec = tuple[str, dict[str, Any]]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
MIN_PASSWORD_SCORE = 3
"""zxcvbn's score (0-4) a password needs: 3 is "safely unguessable" against
an offline attack on a slow hash (about 10^8 guesses and more)."""
ESTIMATED_PREFIX = 72
"""zxcvbn estimates this many leading characters (its own limit; a longer
password is at least as strong as its prefix)."""
BUYER_FIELDS = (
    "company_name",
    "company_size",
    "industry",
    "website",
    "about",
    "project_types",
    "preferences",
)
SELLER_FIELDS = ("headline", "bio", "hourly_rate", "photo_file_id")


# -- names -----------------------------------------------------------------


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def email_claim_stream(email: str) -> str:
    return "emailclaim-" + hashlib.sha256(normalize_email(email).encode()).hexdigest()


def user_stream(user_id: str) -> str:
    return f"user-{user_id}"


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def file_stream(file_id: str) -> str:
    return f"file-{file_id}"


def hash_token(token: str) -> str:
    """Tokens are random or keyed MACs; a fast hash suffices to keep them out of the log."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def mail_token(key: bytes, purpose: str, user_id: str, request_id: str) -> str:
    """The token a mail carries: ``<user>.<request>.<MAC>``. The MAC is keyed by
    a server-side secret, so the log (which holds the request's id and only the
    token's hash) is not enough to make one, and the mailer, which holds the
    key, makes the same token again from the event alone."""
    mac = hmac.new(key, f"{purpose}|{user_id}|{request_id}".encode(), hashlib.sha256).digest()
    return f"{user_id}.{request_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def refresh_token(key: bytes, session_id: str, generation: int) -> str:
    """A session's refresh token after ``generation`` rotations: keyed, so two
    tabs that rotated the same token a moment apart can both be given the one
    that replaced it (see ``refresh_session``)."""
    mac = hmac.new(key, f"refresh|{session_id}|{generation}".encode(), hashlib.sha256).digest()
    return f"{session_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def parse_mail_token(token: str) -> tuple[str, str] | None:
    """(user id, request id) of a well-formed mail token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        return str(uuid.UUID(parts[0])), str(uuid.UUID(parts[1]))
    except ValueError:
        return None


# -- passwords ---------------------------------------------------------------


def _estimate(password: str, user_inputs: list[str]) -> dict[str, Any] | None:
    """zxcvbn's estimate. Its matcher fails on some inputs (an IndexError in
    its scoring, found by the API fuzzer): then without the address, and if
    even that fails, no estimate (the length rule still holds), never a 500."""
    for inputs in (user_inputs, []):
        try:
            found: dict[str, Any] = zxcvbn(password, user_inputs=inputs)
            return found
        except IndexError:
            continue
    return None


def password_problems(password: str, email: str) -> list[str]:
    """What is wrong with a password, in words a person can act on ([] if fine).

    The strength is zxcvbn's estimate (its own frequency lists of passwords,
    names and words, keyboard patterns, dates, repeats), told the address so
    that a password made of it counts as weak."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
        return problems
    address = normalize_email(email)
    local = address.split("@", 1)[0]
    if len(local) >= 4 and local in password.lower():
        problems.append("Do not use your email address in your password.")
    estimate = _estimate(password[:ESTIMATED_PREFIX], [address, local])
    if estimate is not None and estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = [feedback["warning"], *feedback["suggestions"]]
        problems.append(" ".join(["This password is too easy to guess.", *filter(None, advice)]))
    return problems


# -- email claims ------------------------------------------------------------


@dataclass(frozen=True)
class EmailClaim:
    user_id: str | None = None
    claimed_at: datetime | None = None


def evolve_claim(state: EmailClaim, event: EventView) -> EmailClaim:
    if event.type == "EmailClaimed":
        return EmailClaim(event.data["user_id"], event.recorded_at)
    if event.type == "EmailClaimReleased":
        return EmailClaim()
    return state


# -- users -------------------------------------------------------------------


VERIFY_EMAIL_TTL = timedelta(hours=24)
RESET_PASSWORD_TTL = timedelta(hours=1)
UNVERIFIED_CLAIM_TTL = VERIFY_EMAIL_TTL
"""An address registered but never verified this long may be registered again
by whoever can read its mail: nobody holds someone else's address for good."""


@dataclass(frozen=True)
class MailedToken:
    """A token sent by mail, as the log knows it: its hash, never the token."""

    request_id: str
    token_hash: str
    expires_at: datetime
    email: str = ""
    used: bool = False


@dataclass(frozen=True)
class User(Profile):
    """The account: the public profile, and what only identity holds."""

    password_hash: str = ""
    email_verified: bool = False
    registered_at: datetime | None = None
    verifications: dict[str, MailedToken] = field(default_factory=dict)
    """Verification links sent (sign-up and email changes), by request id."""
    resets: dict[str, MailedToken] = field(default_factory=dict)
    """Password-reset links sent, by request id; a password change voids them."""
    sessions_ended_at: datetime | None = None
    """Every session started before this has ended, but ``kept_session``."""
    kept_session: str | None = None
    two_factor: TwoFactor = field(default_factory=TwoFactor)
    saved_freelancers: frozenset[str] = frozenset()
    """The sellers a buyer saved to their list."""

    @property
    def exists(self) -> bool:
        return bool(self.user_id)

    def session_ended(self, session_id: str, started_at: datetime | None) -> bool:
        if self.sessions_ended_at is None or session_id == self.kept_session:
            return False
        return started_at is None or started_at <= self.sessions_ended_at


def evolve_user(state: User, event: EventView) -> User:
    data = event.data
    match event.type:
        case "UserRegistered":
            return User(
                user_id=data["user_id"],
                email=data["email"],
                password_hash=data["password_hash"],
                roles=tuple(data["roles"]),
                registered_at=event.recorded_at,
            )
        case "RoleAdded":
            return replace(state, roles=(*state.roles, data["role"]))
        case "RoleRemoved":
            return replace(state, roles=tuple(r for r in state.roles if r != data["role"]))
        case "PasswordChanged":
            return replace(state, password_hash=data["password_hash"], resets={})
        case "EmailVerificationRequested":
            sent = MailedToken(
                data["request_id"], data["token_hash"], data["expires_at"], data["email"]
            )
            return replace(state, verifications={**state.verifications, sent.request_id: sent})
        case "EmailVerified":
            used = {
                k: replace(v, used=True) if k == data["request_id"] else v
                for k, v in state.verifications.items()
            }
            return replace(state, email=data["email"], email_verified=True, verifications=used)
        case "EmailChanged":
            # Every link mailed before (to the old address, or to another one
            # asked for) is void: only the address just verified may act now.
            return replace(
                state,
                email=data["email"],
                email_verified=True,
                verifications={k: replace(v, used=True) for k, v in state.verifications.items()},
                resets={k: replace(v, used=True) for k, v in state.resets.items()},
            )
        case "PasswordResetRequested":
            sent = MailedToken(
                data["request_id"], data["token_hash"], data["expires_at"], data["email"]
            )
            return replace(state, resets={**state.resets, sent.request_id: sent})
        case "PasswordReset":
            # Every reset link sent before is void once one of them was used.
            voided = {k: replace(v, used=True) for k, v in state.resets.items()}
            return replace(state, password_hash=data["password_hash"], resets=voided)
        case "SessionsEnded":
            return replace(
                state, sessions_ended_at=data["ended_at"], kept_session=data["kept_session_id"]
            )
        case "BuyerProfileUpdated":
            return replace(state, buyer={**state.buyer, **data})
        case "SellerProfileUpdated":
            return replace(state, seller={**state.seller, **data})
        case "SellerSkillsSet":
            return replace(state, skills=tuple(data["skills"]))
        case "ExperienceAdded":
            return replace(state, experience={**state.experience, data["experience_id"]: data})
        case "ExperienceRemoved":
            rest = {k: v for k, v in state.experience.items() if k != data["experience_id"]}
            return replace(state, experience=rest)
        case "PortfolioItemAdded":
            return replace(state, portfolio={**state.portfolio, data["item_id"]: data})
        case "PortfolioItemRemoved":
            rest = {k: v for k, v in state.portfolio.items() if k != data["item_id"]}
            return replace(state, portfolio=rest)
        case "FreelancerSaved":
            return replace(state, saved_freelancers=state.saved_freelancers | {data["seller_id"]})
        case "FreelancerUnsaved":
            return replace(state, saved_freelancers=state.saved_freelancers - {data["seller_id"]})
        case "PersonalDataErased":
            return replace(
                state,
                erased=True,
                password_hash="",
                two_factor=TwoFactor(),
                saved_freelancers=frozenset(),
            )
    if event.type in TWO_FACTOR_EVENTS:
        return replace(state, two_factor=two_factor.evolve(state.two_factor, event))
    return state


TWO_FACTOR_EVENTS = frozenset(
    {
        "TwoFactorEnrollmentStarted",
        "TwoFactorEnabled",
        "TwoFactorCodeTaken",
        "RecoveryCodeUsed",
        "RecoveryCodesRenewed",
        "TwoFactorDisabled",
    }
)


def register(
    state: User, user_id: str, email: str, password_hash: str, roles: list[str]
) -> list[EventSpec]:
    if state.exists:
        raise Conflict("this account exists already", {"reason": "user_exists"})
    if not roles:
        raise InvalidInput(
            "choose at least one role", {"fields": {"roles": ["Choose buyer, seller or both."]}}
        )
    return [
        (
            "UserRegistered",
            {
                "user_id": user_id,
                "email": normalize_email(email),
                "password_hash": password_hash,
                "roles": sorted(set(roles)),
            },
        )
    ]


def require_user(state: User) -> User:
    if not state.exists or state.erased:
        raise NotFound("no such user")
    return state


def erase_personal_data(state: User, erased_by: str) -> list[EventSpec]:
    """Erase the person (once): their keys go, their account can no longer be used."""
    if not state.exists:
        raise NotFound("no such user")
    if state.erased:
        return []
    return [("PersonalDataErased", {"user_id": state.user_id, "erased_by": erased_by})]


def release_claim_of(state: EmailClaim, user_id: str) -> list[EventSpec]:
    """An erased person's address is free again (for a new account)."""
    if state.user_id != user_id:
        return []
    return [("EmailClaimReleased", {"user_id": user_id, "reason": "personal data erased"})]


def add_role(state: User, role: str) -> list[EventSpec]:
    require_user(state)
    return [] if role in state.roles else [("RoleAdded", {"role": role})]


def remove_role(state: User, role: str, now: datetime) -> list[EventSpec]:
    """Take a role back; the user's sessions end, so no token still carries it."""
    require_user(state)
    if role not in state.roles:
        return []
    return [("RoleRemoved", {"role": role}), end_sessions(now, None, f"{role} role removed")]


def _changes(
    current: dict[str, Any], wanted: dict[str, Any], allowed: tuple[str, ...]
) -> dict[str, Any]:
    return {k: v for k, v in wanted.items() if k in allowed and current.get(k) != v}


def update_buyer_profile(state: User, wanted: dict[str, Any]) -> list[EventSpec]:
    require_user(state)
    events = add_role(state, "buyer")
    changed = _changes(state.buyer, wanted, BUYER_FIELDS)
    return events + ([("BuyerProfileUpdated", changed)] if changed else [])


def update_seller_profile(
    state: User, wanted: dict[str, Any], owned_photo: bool | None = None
) -> list[EventSpec]:
    """``owned_photo``: whether the photo file (if one is set) is the user's own image."""
    require_user(state)
    if wanted.get("photo_file_id") and owned_photo is False:
        raise InvalidInput(
            "the photo must be an image you uploaded",
            {"fields": {"photo_file_id": ["Upload an image with purpose 'photo' first."]}},
        )
    events = add_role(state, "seller")
    fields = {k: v for k, v in wanted.items() if k != "skills"}
    changed = _changes(state.seller, fields, SELLER_FIELDS)
    events += [("SellerProfileUpdated", changed)] if changed else []
    if "skills" in wanted:
        try:
            skills = normalize_skills(wanted["skills"])
        except ValueError as exc:
            raise InvalidInput(str(exc), {"fields": {"skills": [str(exc)]}}) from exc
        if tuple(skills) != state.skills:
            events.append(("SellerSkillsSet", {"skills": skills}))
    return events


def add_experience(state: User, experience_id: str, entry: dict[str, Any]) -> list[EventSpec]:
    require_user(state)
    end = entry.get("end_date")
    if end is not None and end < entry["start_date"]:
        raise InvalidInput(
            "an experience cannot end before it starts",
            {"fields": {"end_date": ["Must not be before start_date."]}},
        )
    if len(state.experience) >= 50:
        raise Conflict("at most 50 experience entries", {"reason": "limit"})
    return [("ExperienceAdded", {"experience_id": experience_id, **entry})]


def remove_experience(state: User, experience_id: str) -> list[EventSpec]:
    require_user(state)
    if experience_id not in state.experience:
        raise NotFound("no such experience entry")
    return [("ExperienceRemoved", {"experience_id": experience_id})]


def add_portfolio_item(
    state: User, item_id: str, item: dict[str, Any], owned_files: set[str]
) -> list[EventSpec]:
    """``owned_files``: which of the item's file ids the user uploaded."""
    require_user(state)
    foreign = [f for f in item.get("file_ids", []) if f not in owned_files]
    if foreign:
        raise InvalidInput(
            "a portfolio item can only show files you uploaded",
            {"fields": {"file_ids": [f"Unknown or not yours: {', '.join(foreign)}."]}},
        )
    if len(state.portfolio) >= 100:
        raise Conflict("at most 100 portfolio items", {"reason": "limit"})
    return [("PortfolioItemAdded", {"item_id": item_id, **item})]


def remove_portfolio_item(state: User, item_id: str) -> list[EventSpec]:
    require_user(state)
    if item_id not in state.portfolio:
        raise NotFound("no such portfolio item")
    return [("PortfolioItemRemoved", {"item_id": item_id})]


# -- saved freelancers ----------------------------------------------------------

MAX_SAVED_FREELANCERS = 500


def save_freelancer(buyer: User, seller: User) -> list[EventSpec]:
    """Put ``seller`` on the buyer's list (once: saving again changes nothing)."""
    require_user(buyer)
    if "buyer" not in buyer.roles:
        raise Forbidden("only buyers save freelancers")
    if not seller.exists or seller.erased:
        raise NotFound("no such seller")
    if "seller" not in seller.roles:
        raise InvalidInput(
            "this user is not a seller", {"fields": {"seller_id": ["Not a seller."]}}
        )
    if seller.user_id == buyer.user_id:
        raise InvalidInput("you cannot save yourself", {"fields": {"seller_id": ["That is you."]}})
    if seller.user_id in buyer.saved_freelancers:
        return []
    if len(buyer.saved_freelancers) >= MAX_SAVED_FREELANCERS:
        raise Conflict(f"at most {MAX_SAVED_FREELANCERS} saved freelancers", {"reason": "limit"})
    return [("FreelancerSaved", {"seller_id": seller.user_id})]


def unsave_freelancer(buyer: User, seller_id: str) -> list[EventSpec]:
    """Take ``seller_id`` off the buyer's list (nothing if it is not on it)."""
    require_user(buyer)
    if seller_id not in buyer.saved_freelancers:
        return []
    return [("FreelancerUnsaved", {"seller_id": seller_id})]


# -- mailed tokens: verification, reset ------------------------------------------


MAX_PENDING_MAILS = 3
"""Links of one kind an account may have outstanding at once: asking for more
sends nothing (no flooding someone's inbox through our sign-up or reset form)."""


def _pending(sent: dict[str, MailedToken], now: datetime) -> int:
    return sum(1 for t in sent.values() if not t.used and t.expires_at > now)


def verification_request(
    request_id: str, email: str, token_hash: str, expires_at: datetime
) -> EventSpec:
    return (
        "EmailVerificationRequested",
        {
            "request_id": request_id,
            "email": normalize_email(email),
            "token_hash": token_hash,
            "expires_at": expires_at,
        },
    )


def request_verification(state: User, request: EventSpec, now: datetime) -> list[EventSpec]:
    """Mail a link to the account's own address (a resend) or to the one it
    asks to change to (``request``, made by ``verification_request``)."""
    require_user(state)
    email = request[1]["email"]
    if email == state.email and state.email_verified:
        raise Conflict("this address is verified already", {"reason": "already_verified"})
    if _pending(state.verifications, now) >= MAX_PENDING_MAILS:
        return []
    return [request]


def holds_address(user: User, email: str, now: datetime) -> bool:
    """Whether an account holds ``email``: it is its address, and it was
    verified or registered less than ``UNVERIFIED_CLAIM_TTL`` ago."""
    if not user.exists or user.email != normalize_email(email):
        return False
    if user.email_verified or user.registered_at is None:
        return True
    return now - user.registered_at < UNVERIFIED_CLAIM_TTL


def redeem(sent: MailedToken | None, token_hash: str, now: datetime) -> MailedToken:
    """The mailed token a presented one is, or why it is refused. A token that
    matches no hash is ``invalid`` whatever its form: nothing tells a forger
    which part was wrong."""
    if sent is None or not same_hash(sent.token_hash, token_hash):
        raise TokenInvalid("this link is not valid", {"reason": "token_invalid"})
    if sent.used:
        raise TokenUsed("this link was used already", {"reason": "token_used"})
    if sent.expires_at <= now:
        raise TokenExpired("this link has expired; ask for a new one", {"reason": "token_expired"})
    return sent


def verify_email(
    state: User, request_id: str, token_hash: str, now: datetime, address_free: bool
) -> list[EventSpec]:
    """Verify the address a link was sent to. For the account's own address
    that verifies it; for another one (an email change) it becomes the
    account's address, if nobody holds it (``address_free``)."""
    if not state.exists:
        raise TokenInvalid("this link is not valid", {"reason": "token_invalid"})
    sent = redeem(state.verifications.get(request_id), token_hash, now)
    if sent.email == state.email:
        return [("EmailVerified", {"request_id": request_id, "email": sent.email})]
    if not address_free:
        raise Conflict("this email address is already registered", {"reason": "email_taken"})
    return [
        (
            "EmailChanged",
            {"request_id": request_id, "email": sent.email, "previous_email": state.email},
        )
    ]


def request_password_reset(
    state: User, request_id: str, token_hash: str, expires_at: datetime, now: datetime
) -> list[EventSpec]:
    if not state.exists or _pending(state.resets, now) >= MAX_PENDING_MAILS:
        return []
    return [
        (
            "PasswordResetRequested",
            {
                "request_id": request_id,
                "email": state.email,
                "token_hash": token_hash,
                "expires_at": expires_at,
            },
        )
    ]


def reset_password(
    state: User, request_id: str, token_hash: str, password_hash: str, now: datetime
) -> list[EventSpec]:
    """A new password by a mailed link: every session ends (whoever knew the
    old password is logged out)."""
    if not state.exists:
        raise TokenInvalid("this link is not valid", {"reason": "token_invalid"})
    redeem(state.resets.get(request_id), token_hash, now)
    return [
        ("PasswordReset", {"request_id": request_id, "password_hash": password_hash}),
        end_sessions(now, None, "password reset"),
    ]


def change_password(
    state: User, password_hash: str, session_id: str, now: datetime
) -> list[EventSpec]:
    """The caller proved the current password; every other session ends."""
    require_user(state)
    return [
        ("PasswordChanged", {"password_hash": password_hash}),
        end_sessions(now, session_id, "password changed"),
    ]


def end_sessions(now: datetime, kept_session_id: str | None, reason: str) -> EventSpec:
    return (
        "SessionsEnded",
        {"ended_at": now, "kept_session_id": kept_session_id, "reason": reason},
    )


# -- sessions ----------------------------------------------------------------


REFRESH_GRACE = timedelta(seconds=30)
"""How long a rotated-out refresh token is still taken, and answered with the
token that replaced it: two tabs refreshing the same token at once both get
the session's current one, instead of the second looking like a thief."""


@dataclass(frozen=True)
class Session:
    session_id: str = ""
    user_id: str = ""
    token_hash: str = ""
    expires_at: datetime | None = None
    revoked: bool = False
    started_at: datetime | None = None
    generation: int = 0
    """How many times the refresh token was rotated."""
    previous_hash: str = ""
    rotated_at: datetime | None = None
    two_factor: bool = False
    """Started with a second factor (so it has the roles that need one)."""


def evolve_session(state: Session, event: EventView) -> Session:
    data = event.data
    match event.type:
        case "SessionStarted":
            return Session(
                data["session_id"],
                data["user_id"],
                data["token_hash"],
                data["expires_at"],
                started_at=data.get("started_at") or event.recorded_at,
                two_factor=data.get("two_factor") is True,
            )
        case "SessionRefreshed":
            return replace(
                state,
                token_hash=data["token_hash"],
                expires_at=data["expires_at"],
                generation=state.generation + 1,
                previous_hash=state.token_hash,
                rotated_at=event.recorded_at,
            )
        case "SessionRevoked":
            return replace(state, revoked=True)
    return state


def session_expiry(
    started_at: datetime, now: datetime, idle: timedelta, lifetime: timedelta
) -> datetime:
    """A session ends when unused for ``idle``, and ``lifetime`` after it began
    whatever happens."""
    return min(now + idle, started_at + lifetime)


def refresh_session(
    state: Session, presented_hash: str, new_hash: str, now: datetime, expires_at: datetime
) -> tuple[list[EventSpec], bool]:
    """Rotate the refresh token. Returns (events, accepted).

    A token rotated out within ``REFRESH_GRACE`` is accepted with no change
    (the caller answers with the session's current token). One rotated out
    before that being presented again means it was copied: the whole session
    is revoked (the thief's and the owner's tokens).
    """
    if not state.session_id or state.revoked:
        return [], False
    if state.expires_at is not None and state.expires_at <= now:
        return [], False
    if same_hash(presented_hash, state.token_hash):
        return [("SessionRefreshed", {"token_hash": new_hash, "expires_at": expires_at})], True
    recent = state.rotated_at is not None and now - state.rotated_at <= REFRESH_GRACE
    if recent and state.previous_hash and same_hash(presented_hash, state.previous_hash):
        return [], True
    return [("SessionRevoked", {"reason": "refresh token reused"})], False


def revoke_session(state: Session, user_id: str | None) -> list[EventSpec]:
    if not state.session_id:
        raise Unauthorized("unknown session")
    if user_id is not None and user_id != state.user_id:
        raise Forbidden("not your session")
    return [] if state.revoked else [("SessionRevoked", {"reason": "logged out"})]


# -- files -------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    file_id: str = ""
    owner_id: str = ""
    sha256: str = ""
    size: int = 0
    content_type: str = ""
    filename: str = ""
    purpose: str = ""
    visibility: str = "private"
    readers: frozenset[str] = frozenset()

    def public_view(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "owner_id": self.owner_id,
            "sha256": self.sha256,
            "size": self.size,
            "content_type": self.content_type,
            "filename": self.filename,
            "purpose": self.purpose,
            "visibility": self.visibility,
        }


def evolve_file(state: FileRecord, event: EventView) -> FileRecord:
    if event.type == "FileUploaded":
        d = event.data
        return FileRecord(
            d["file_id"],
            d["owner_id"],
            d["sha256"],
            d["size"],
            d["content_type"],
            d["filename"],
            d["purpose"],
            d["visibility"],
        )
    if event.type == "FileAccessGranted":
        return replace(state, readers=state.readers | {event.data["user_id"]})
    return state


ANYONE = "*"
"""A reader that is everyone: a project's attachments are read by whoever reads
the project, and projects are public."""


def grant_file_access(record: FileRecord, owner_id: str, reader_id: str) -> list[EventSpec]:
    """Let ``reader_id`` (a user, or ``ANYONE``) download a file ``owner_id``
    attached for them; nothing if the file is not theirs to share, or the
    reader has access already."""
    if not record.file_id or record.owner_id != owner_id:
        return []
    if reader_id in record.readers or reader_id == owner_id or ANYONE in record.readers:
        return []
    return [("FileAccessGranted", {"user_id": reader_id})]


def evolve_proposal_parties(state: tuple[str, str], event: EventView) -> tuple[str, str]:
    """(seller, buyer) of a proposal, from bidding's published ``ProposalSubmitted``."""
    if event.type == "ProposalSubmitted":
        return str(event.data["seller_id"]), str(event.data["buyer_id"])
    return state


def visibility_for(purpose: str) -> str:
    """Photos and portfolio samples are shown to anyone; everything else is private."""
    return "public" if purpose in ("photo", "portfolio") else "private"


def may_download(record: FileRecord, viewer_id: str | None) -> bool:
    if not record.file_id:
        return False
    if record.visibility == "public" or ANYONE in record.readers:
        return True
    return viewer_id is not None and (viewer_id == record.owner_id or viewer_id in record.readers)
