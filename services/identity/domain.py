"""Identity's rules as pure functions: ``evolve`` folds events into state,
the decision functions return the events a command produces, or raise.
No I/O here: hashing, clocks and ids come in as arguments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.identity.profiles import Profile
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from shared.schemas import EventView
from shared.skills import normalize_skills

EventSpec = tuple[str, dict[str, Any]]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "qwerty",
        "qwertyuiop",
        "1234567890",
        "12345678910",
        "iloveyou",
        "letmein",
        "welcome",
        "admin",
        "abc123456",
        "qwerty123",
        "111111111",
        "0000000000",
        "monkey",
        "dragon",
    }
)
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
    """Refresh tokens are random; a fast hash suffices to keep them out of the log."""
    return hashlib.sha256(token.encode()).hexdigest()


# -- passwords ---------------------------------------------------------------


def password_problems(password: str, email: str) -> list[str]:
    """What is wrong with a password, in words a person can act on ([] if fine)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        problems.append("This password is too easy to guess.")
    local = normalize_email(email).split("@", 1)[0]
    if len(local) >= 4 and local in lowered:
        problems.append("Do not use your email address in your password.")
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


@dataclass(frozen=True)
class User(Profile):
    """The account: the public profile, and what only identity holds."""

    password_hash: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.user_id)


def evolve_user(state: User, event: EventView) -> User:
    data = event.data
    match event.type:
        case "UserRegistered":
            return User(
                user_id=data["user_id"],
                email=data["email"],
                password_hash=data["password_hash"],
                roles=tuple(data["roles"]),
            )
        case "RoleAdded":
            return replace(state, roles=(*state.roles, data["role"]))
        case "PasswordChanged":
            return replace(state, password_hash=data["password_hash"])
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
        case "PersonalDataErased":
            return replace(state, erased=True, password_hash="")
    return state


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


# -- sessions ----------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    session_id: str = ""
    user_id: str = ""
    token_hash: str = ""
    expires_at: datetime | None = None
    revoked: bool = False


def evolve_session(state: Session, event: EventView) -> Session:
    data = event.data
    match event.type:
        case "SessionStarted":
            return Session(
                data["session_id"], data["user_id"], data["token_hash"], data["expires_at"]
            )
        case "SessionRefreshed":
            return replace(state, token_hash=data["token_hash"], expires_at=data["expires_at"])
        case "SessionRevoked":
            return replace(state, revoked=True)
    return state


def refresh_session(
    state: Session, presented_hash: str, new_hash: str, now: datetime, expires_at: datetime
) -> tuple[list[EventSpec], bool]:
    """Rotate the refresh token. Returns (events, accepted).

    A token that was already rotated out being presented again means it was
    copied: the whole session is revoked (the thief's and the owner's tokens).
    """
    if not state.session_id or state.revoked:
        return [], False
    if state.expires_at is not None and state.expires_at <= now:
        return [], False
    if presented_hash != state.token_hash:
        return [("SessionRevoked", {"reason": "refresh token reused"})], False
    return [("SessionRefreshed", {"token_hash": new_hash, "expires_at": expires_at})], True


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


def grant_file_access(record: FileRecord, owner_id: str, reader_id: str) -> list[EventSpec]:
    """Let ``reader_id`` download a file ``owner_id`` shared with them; nothing if the
    file is not theirs to share, or the reader has access already."""
    if record.owner_id != owner_id or reader_id in record.readers or reader_id == owner_id:
        return []
    return [("FileAccessGranted", {"user_id": reader_id})]


def visibility_for(purpose: str) -> str:
    """Photos and portfolio samples are shown to anyone; everything else is private."""
    return "public" if purpose in ("photo", "portfolio") else "private"


def may_download(record: FileRecord, viewer_id: str | None) -> bool:
    if not record.file_id:
        return False
    if record.visibility == "public":
        return True
    return viewer_id is not None and (viewer_id == record.owner_id or viewer_id in record.readers)
