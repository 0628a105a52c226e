"""The identity service's events: its published API.

Streams: ``user-<user_id>`` (account and profiles), ``emailclaim-<sha256 of
the normalised email>`` (who holds an address), ``session-<session_id>``
(refresh-token sessions), ``file-<file_id>`` (uploaded files' records).
Password hashes and the hashes of refresh and mailed tokens appear in these
events, declared ``sensitive``: every export and replay redacts them, and no
token itself is ever recorded.
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


@registry.event("RoleRemoved", published=ALL)
class RoleRemoved(Schema):
    """An operator took the role back (``marketplace-admin revoke-admin``)."""

    role = fields.String(required=True, validate=validate.OneOf((*ROLES, ADMIN)))


@registry.event("PasswordChanged", sensitive=("password_hash",))
class PasswordChanged(Schema):
    password_hash = fields.String(required=True)


@registry.event(
    "EmailVerificationRequested", sensitive=("token_hash",), personal={"email": SUBJECT}
)
class EmailVerificationRequested(Schema):
    """A link to verify ``email`` (the account's, or the one it changes to) is
    to be mailed. The token is never recorded: the mailer makes it again from
    ``request_id`` and a server-side key (``domain.mail_token``)."""

    request_id = fields.String(required=True)
    email = fields.String(required=True)
    token_hash = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


@registry.event("EmailVerified", published=ALL, personal={"email": SUBJECT})
class EmailVerified(Schema):
    """The account's address is verified: it may post, propose and be paid."""

    request_id = fields.String(required=True)
    email = fields.String(required=True)


@registry.event(
    "EmailChanged", published=ALL, personal={"email": SUBJECT, "previous_email": SUBJECT}
)
class EmailChanged(Schema):
    """The account's address is now ``email`` (verified by a link sent to it)."""

    request_id = fields.String(required=True)
    email = fields.String(required=True)
    previous_email = fields.String(required=True)


@registry.event("PasswordResetRequested", sensitive=("token_hash",), personal={"email": SUBJECT})
class PasswordResetRequested(Schema):
    request_id = fields.String(required=True)
    email = fields.String(required=True)
    token_hash = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


@registry.event("PasswordReset", sensitive=("password_hash",))
class PasswordReset(Schema):
    request_id = fields.String(required=True)
    password_hash = fields.String(required=True)


@registry.event("SessionsEnded", published=ALL)
class SessionsEnded(Schema):
    """Every session of the user started until ``ended_at`` ends, except
    ``kept_session_id`` (the one that changed the password), if any."""

    ended_at = fields.DateTime(required=True)
    kept_session_id = fields.String(allow_none=True, load_default=None)
    reason = fields.String(required=True)


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


@registry.event("FreelancerSaved", published=ALL)
class FreelancerSaved(Schema):
    """On the buyer's stream: ``seller_id`` is on their list of saved freelancers."""

    seller_id = fields.String(required=True)


@registry.event("FreelancerUnsaved", published=ALL)
class FreelancerUnsaved(Schema):
    """On the buyer's stream: ``seller_id`` is off their list."""

    seller_id = fields.String(required=True)


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
    started_at = fields.DateTime(allow_none=True, load_default=None)
    """Identity's clock at login (older sessions: when the event was recorded)."""
    two_factor = fields.Boolean(load_default=False)
    """Whether the login gave a second factor (roles such as admin need one)."""


@registry.event("SessionRefreshed", sensitive=("token_hash",))
class SessionRefreshed(Schema):
    token_hash = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


@registry.event("SessionRevoked", published=ALL)
class SessionRevoked(Schema):
    """Published: the gateway stops the session's access tokens at once."""

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


# -- two-factor sign-in (services/identity/two_factor.py); all private ----------


@registry.event("TwoFactorEnrollmentStarted", sensitive=("secret",), personal={"secret": SUBJECT})
class TwoFactorEnrollmentStarted(Schema):
    """An authenticator to confirm. ``secret`` is sealed under the person's key
    in the log and never leaves identity."""

    enrollment_id = fields.String(required=True)
    secret = fields.String(required=True)


@registry.event("TwoFactorEnabled", sensitive=("recovery_code_hashes",))
class TwoFactorEnabled(Schema):
    """Confirmed with a code of time step ``step``: sign-in needs a second factor."""

    enrollment_id = fields.String(required=True)
    recovery_code_hashes = fields.List(fields.String(), required=True)
    step = fields.Integer(required=True)


@registry.event("TwoFactorCodeTaken")
class TwoFactorCodeTaken(Schema):
    """A code of this time step was taken: it and older ones are refused after."""

    step = fields.Integer(required=True)


@registry.event("RecoveryCodeUsed")
class RecoveryCodeUsed(Schema):
    index = fields.Integer(required=True)


@registry.event("RecoveryCodesRenewed", sensitive=("recovery_code_hashes",))
class RecoveryCodesRenewed(Schema):
    recovery_code_hashes = fields.List(fields.String(), required=True)
    step = fields.Integer(required=True)


@registry.event("TwoFactorDisabled")
class TwoFactorDisabled(Schema):
    reason = fields.String(required=True)
