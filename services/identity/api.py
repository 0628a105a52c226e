"""The identity service's published API: what its RPC methods accept and return.

The service validates its input with these schemas; the gateway uses the same
ones for HTTP bodies and the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.identity.events import ROLES
from shared.api import CURRENCY, Reputation, ReputationSummary, SkillCount, Strict
from shared.money import MAX_AMOUNT, MoneySchema

COMPANY_SIZES = ("1", "2-10", "11-50", "51-200", "201-1000", "1000+")


class RegisterRequest(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(max=256))
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(min=1),
    )


class LoginRequest(Strict):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class RefreshRequest(Strict):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class ChangePasswordRequest(Strict):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    password = fields.String(required=True, validate=validate.Length(max=256))


class PasswordResetRequest(Strict):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))


class ResetPasswordRequest(Strict):
    token = fields.String(required=True, validate=validate.Length(min=1, max=300))
    password = fields.String(required=True, validate=validate.Length(max=256))


class VerifyEmailRequest(Strict):
    token = fields.String(required=True, validate=validate.Length(min=1, max=300))


class ChangeEmailRequest(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class AcceptedResponse(Schema):
    """The same answer whether or not the address has an account."""

    accepted = fields.Boolean(required=True)


class VerifiedResponse(Schema):
    user_id = fields.String(required=True)
    email = fields.String(required=True)
    email_verified = fields.Boolean(required=True)


class MailSentResponse(Schema):
    sent = fields.Boolean(required=True)
    email = fields.String(required=True, metadata={"description": "Where the link was sent"})


class TokenResponse(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    user_id = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    email_verified = fields.Boolean(
        metadata={"description": "Unverified accounts may not post, propose or be paid"}
    )
    two_factor = fields.Boolean(
        metadata={"description": "Whether this session was started with a second factor"}
    )
    withheld_roles = fields.List(
        fields.String(),
        metadata={
            "description": "Roles of the account this session does not have: they need "
            "two-factor sign-in (turn it on, then log in with a code)"
        },
    )


# -- two-factor sign-in ----------------------------------------------------------

_CODE = fields.String(validate=validate.Length(min=6, max=10))
_RECOVERY = fields.String(validate=validate.Length(min=16, max=40))


class TwoFactorLoginRequest(Strict):
    """The second step of a login that answered ``two_factor_required``: its
    ``challenge`` and a code from the authenticator app, or a recovery code."""

    challenge = fields.String(required=True, validate=validate.Length(min=10, max=200))
    code = _CODE
    recovery_code = _RECOVERY


class StartTwoFactorRequest(Strict):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class TwoFactorCodeRequest(Strict):
    code = fields.String(required=True, validate=validate.Length(min=6, max=10))


class DisableTwoFactorRequest(Strict):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    code = _CODE
    recovery_code = _RECOVERY


class TwoFactorSetupResponse(Schema):
    enrollment_id = fields.String(required=True)
    secret = fields.String(
        required=True, metadata={"description": "Base32, for typing into an authenticator app"}
    )
    otpauth_uri = fields.String(
        required=True, metadata={"description": "The same, as a URI for a QR code"}
    )


class RecoveryCodesResponse(Schema):
    recovery_codes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Shown once: each signs in once without the app"},
    )


class TwoFactorStatusResponse(Schema):
    enabled = fields.Boolean(required=True)
    pending = fields.Boolean(
        required=True, metadata={"description": "An authenticator awaits confirmation"}
    )
    required = fields.Boolean(
        required=True, metadata={"description": "The account has a role that needs it"}
    )
    recovery_codes_left = fields.Integer(required=True)


class UserResponse(Schema):
    user_id = fields.String(required=True)
    email = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    email_verified = fields.Boolean()


class BuyerProfileRequest(Strict):
    company_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    company_size = fields.String(allow_none=True, validate=validate.OneOf(COMPANY_SIZES))
    industry = fields.String(allow_none=True, validate=validate.Length(max=100))
    website = fields.URL(
        allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=500)
    )
    about = fields.String(allow_none=True, validate=validate.Length(max=5000))
    project_types = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(max=20)
    )
    preferences = fields.Dict(
        keys=fields.String(validate=validate.Length(max=50)),
        values=fields.String(validate=validate.Length(max=500)),
        validate=validate.Length(max=20),
    )


class SellerProfileRequest(Strict):
    headline = fields.String(allow_none=True, validate=validate.Length(max=120))
    bio = fields.String(allow_none=True, validate=validate.Length(max=5000))
    hourly_rate = fields.Nested(MoneySchema, allow_none=True)
    photo_file_id = fields.UUID(allow_none=True)
    skills = fields.List(
        fields.String(validate=validate.Length(max=100)), validate=validate.Length(max=50)
    )


class ExperienceRequest(Strict):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    organisation = fields.String(required=True, validate=validate.Length(min=1, max=200))
    start_date = fields.Date(required=True)
    end_date = fields.Date(allow_none=True, load_default=None)
    description = fields.String(load_default="", validate=validate.Length(max=5000))


class PortfolioItemRequest(Strict):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    links = fields.List(
        fields.URL(schemes={"http", "https"}, validate=validate.Length(max=500)),
        load_default=list,
        validate=validate.Length(max=10),
    )
    file_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=20))


class ExperienceResponse(Schema):
    experience_id = fields.String(required=True)
    title = fields.String(required=True)
    organisation = fields.String(required=True)
    start_date = fields.String(required=True)
    end_date = fields.String(allow_none=True)
    description = fields.String()


class PortfolioItemResponse(Schema):
    item_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String()
    links = fields.List(fields.String())
    file_ids = fields.List(fields.String())


class CompletenessResponse(Schema):
    percent = fields.Integer(required=True)
    missing = fields.List(fields.String(), required=True)


class BuyerProfileResponse(Schema):
    company_name = fields.String(allow_none=True)
    company_size = fields.String(allow_none=True)
    industry = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    about = fields.String(allow_none=True)
    project_types = fields.List(fields.String())
    preferences = fields.Dict()


class SellerProfileResponse(Schema):
    headline = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    hourly_rate = fields.Nested(MoneySchema, allow_none=True)
    photo_file_id = fields.String(allow_none=True)
    skills = fields.List(fields.String())
    experience = fields.List(fields.Nested(ExperienceResponse))
    portfolio = fields.List(fields.Nested(PortfolioItemResponse))


class ProfileResponse(Schema):
    """Everyone sees the public part; ``email`` and ``completeness`` only the owner."""

    user_id = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    buyer = fields.Nested(BuyerProfileResponse, allow_none=True)
    seller = fields.Nested(SellerProfileResponse, allow_none=True)
    email = fields.String()
    completeness = fields.Dict(keys=fields.String(), values=fields.Nested(CompletenessResponse))
    reputation = fields.Nested(Reputation, metadata={"description": "From reputation's events"})
    erased = fields.Boolean(
        metadata={"description": "The person's data was erased: nothing of them is shown"}
    )


class ErasureResponse(Schema):
    user_id = fields.String(required=True)
    erased = fields.Boolean(required=True)


class ExportResponse(Schema):
    """Everything the marketplace holds about the caller, by view (rows as the
    gateway's views hold them)."""

    user_id = fields.String(required=True)
    exported_at = fields.String(required=True)
    profile = fields.Dict(required=True)
    projects = fields.List(fields.Dict(), required=True)
    alerts = fields.List(fields.Dict(), required=True)
    alert_matches = fields.List(fields.Dict(), required=True)
    proposals = fields.List(fields.Dict(), required=True)
    invitations = fields.List(fields.Dict(), required=True)
    contracts = fields.List(fields.Dict(), required=True)
    offer_versions = fields.List(fields.Dict(), required=True)
    contract_history = fields.List(fields.Dict(), required=True)
    conversations = fields.List(fields.Dict(), required=True)
    messages = fields.List(fields.Dict(), required=True)
    notifications = fields.List(fields.Dict(), required=True)
    reviews_written = fields.List(fields.Dict(), required=True)
    reviews_received = fields.List(fields.Dict(), required=True)
    reputation = fields.List(fields.Dict(), required=True)
    payments = fields.Dict(required=True)


class FileResponse(Schema):
    file_id = fields.String(required=True)
    owner_id = fields.String(required=True)
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    content_type = fields.String(required=True)
    filename = fields.String(required=True)
    purpose = fields.String(required=True)
    visibility = fields.String(required=True)


# -- talent search and saved freelancers ------------------------------------------

TALENT_SORTS = ("relevance", "job_success", "rate", "rate_desc")


class FreelancerSearchQuery(Strict):
    """Talent search. ``skills`` is comma-separated; rates are per hour in minor
    units of ``currency``, which a rate filter or sort needs (amounts in two
    currencies do not compare). ``rate`` sorts the lowest first."""

    q = fields.String(load_default=None, validate=validate.Length(max=200))
    skills = fields.String(load_default=None, validate=validate.Length(max=1000))
    skills_mode = fields.String(load_default="any", validate=validate.OneOf(("any", "all")))
    rate_min = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_AMOUNT))
    rate_max = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_AMOUNT))
    currency = fields.String(load_default=None, validate=CURRENCY)
    min_job_success = fields.Integer(load_default=None, validate=validate.Range(min=0, max=100))
    min_reviews = fields.Integer(load_default=None, validate=validate.Range(min=0, max=1_000_000))
    sort = fields.String(load_default=None, validate=validate.OneOf(TALENT_SORTS))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))

    @validates_schema
    def _coherent(self, data: dict[str, Any], **_: Any) -> None:
        low, high = data.get("rate_min"), data.get("rate_max")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not be more than rate_max.", "rate_min")
        by_rate = data.get("sort") in ("rate", "rate_desc")
        if (low is not None or high is not None or by_rate) and not data.get("currency"):
            raise ValidationError("Give the currency of the rates.", "currency")


class FreelancerResponse(Schema):
    """A seller as talent search and saved lists show them."""

    user_id = fields.String(required=True)
    headline = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    skills = fields.List(fields.String(), required=True)
    hourly_rate = fields.Nested(MoneySchema, allow_none=True)
    photo_file_id = fields.String(allow_none=True)
    reputation = fields.Nested(
        ReputationSummary, allow_none=True, metadata={"description": "As a seller; none yet"}
    )


class FreelancerSearchPage(Schema):
    items = fields.List(fields.Nested(FreelancerResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    total = fields.Integer(required=True)
    skill_counts = fields.List(fields.Nested(SkillCount), required=True)


class SavedFreelancerResponse(Schema):
    seller_id = fields.String(required=True)
    saved_at = fields.String(required=True)
    freelancer = fields.Nested(FreelancerResponse, required=True)


class SavedFreelancerPage(Schema):
    items = fields.List(fields.Nested(SavedFreelancerResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
