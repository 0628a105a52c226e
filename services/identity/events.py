"""The identity service's events: its published API.

Streams: ``user-<user_id>`` (account and profiles), ``emailclaim-<sha256 of
the normalised email>`` (who holds an address), ``session-<session_id>``
(refresh-token sessions), ``file-<file_id>`` (uploaded files' records).
Password hashes and refresh-token hashes appear in these events, declared
``sensitive``: every export and replay redacts them.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.money import MoneySchema
from shared.schemas import ALL, SUBJECT, registry

STREAM_CATEGORIES = ("user", "emailclaim", "session", "file")
"""The categories of this service's streams: no other service reads them."""

ROLES = ("buyer", "seller")
"""Roles a user chooses; ``admin`` is granted only by an operator (marketplace-admin)."""
ADMIN = "admin"


@registry.event("EmailClaimed", personal={"email": "user_id"})
class EmailClaimed(Schema):
    user_id = fields.String(required=True)
    email = fields.String(required=True)


@registry.event("EmailClaimReleased")
class EmailClaimReleased(Schema):
    user_id = fields.String(required=True)
    reason = fields.String(required=True)


@registry.event(
    "UserRegistered",
    sensitive=("password_hash",),
    published=ALL,
    personal={"email": "user_id"},
)
class UserRegistered(Schema):
    user_id = fields.String(required=True)
    email = fields.String(required=True)
    password_hash = fields.String(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)


@registry.event("RoleAdded", published=ALL)
class RoleAdded(Schema):
    role = fields.String(required=True, validate=validate.OneOf((*ROLES, ADMIN)))


@registry.event("PasswordChanged", sensitive=("password_hash",))
class PasswordChanged(Schema):
    password_hash = fields.String(required=True)


@registry.event(
    "BuyerProfileUpdated",
    published=ALL,
    personal={"company_name": SUBJECT, "website": SUBJECT, "about": SUBJECT},
)
class BuyerProfileUpdated(Schema):
    """Only the fields that changed are present."""

    company_name = fields.String(allow_none=True)
    company_size = fields.String(allow_none=True)
    industry = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    about = fields.String(allow_none=True)
    project_types = fields.List(fields.String())
    preferences = fields.Dict(keys=fields.String())


@registry.event(
    "SellerProfileUpdated", published=ALL, personal={"headline": SUBJECT, "bio": SUBJECT}
)
class SellerProfileUpdated(Schema):
    """Only the fields that changed are present."""

    headline = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    hourly_rate = fields.Nested(MoneySchema, allow_none=True)
    photo_file_id = fields.String(allow_none=True)


@registry.event("SellerSkillsSet", published=ALL)
class SellerSkillsSet(Schema):
    skills = fields.List(fields.String(), required=True)


@registry.event(
    "ExperienceAdded",
    published=ALL,
    personal={"title": SUBJECT, "organisation": SUBJECT, "description": SUBJECT},
)
class ExperienceAdded(Schema):
    experience_id = fields.String(required=True)
    title = fields.String(required=True)
    organisation = fields.String(required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(allow_none=True, load_default=None)
    description = fields.String(load_default="")


@registry.event("ExperienceRemoved", published=ALL)
class ExperienceRemoved(Schema):
    experience_id = fields.String(required=True)


@registry.event(
    "PortfolioItemAdded", published=ALL, personal={"title": SUBJECT, "description": SUBJECT}
)
class PortfolioItemAdded(Schema):
    item_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(load_default="")
    links = fields.List(fields.String(), load_default=list)
    file_ids = fields.List(fields.String(), load_default=list)


@registry.event("PortfolioItemRemoved", published=ALL)
class PortfolioItemRemoved(Schema):
    item_id = fields.String(required=True)


@registry.event("PersonalDataErased", published=ALL)
class PersonalDataErased(Schema):
    """The person's keys are deleted: every service deletes its own keys for
    them and scrubs what it keeps, and the log's personal fields of theirs read
    as erased. ``erased_by``: the person themself or an administrator."""

    user_id = fields.String(required=True)
    erased_by = fields.String(required=True)


@registry.event("SessionStarted", sensitive=("token_hash",))
class SessionStarted(Schema):
    session_id = fields.String(required=True)
    user_id = fields.String(required=True)
    token_hash = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


@registry.event("SessionRefreshed", sensitive=("token_hash",))
class SessionRefreshed(Schema):
    token_hash = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


@registry.event("SessionRevoked")
class SessionRevoked(Schema):
    reason = fields.String(required=True)


@registry.event("FileUploaded", published=ALL, personal={"filename": "owner_id"})
class FileUploaded(Schema):
    file_id = fields.String(required=True)
    owner_id = fields.String(required=True)
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    content_type = fields.String(required=True)
    filename = fields.String(required=True)
    purpose = fields.String(required=True)
    visibility = fields.String(required=True, validate=validate.OneOf(("public", "private")))


@registry.event("FileAccessGranted")
class FileAccessGranted(Schema):
    user_id = fields.String(required=True)
