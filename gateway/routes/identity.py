"""Identity routes: sign-up, verification, passwords and sessions (auth), your
own and others' profiles, portfolio and experience, talent search and buyers'
saved freelancers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request

from gateway import talent
from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, read_when_visible
from gateway.sessions import gate
from services.identity import api as identity_api
from services.identity import views as identity_views
from services.reputation import views as reputation_views
from shared.errors import InvalidInput, NotFound
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.pagination import PageQuery

log = get_logger(__name__)


class IdentityRoutes(RoutesBase):
    """Accounts and profiles: a profile is changed by its owner only (``_must_be``)."""

    # -- accounts --------------------------------------------------------------

    @endpoint(
        "POST",
        "/auth/register",
        summary="Sign up as a buyer, a seller or both",
        tags=("accounts",),
        auth="none",
        body=identity_api.RegisterRequest,
        response=identity_api.UserResponse,
        status=201,
        location="/users/{user_id}/profile",
        errors=(409, 429),
    )
    def register(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.register(
            body["email"], body["password"], body["roles"], client_ip=self.scope.client_ip
        )

    @endpoint(
        "POST",
        "/auth/login",
        summary="Log in: an access token and a refresh token",
        tags=("accounts",),
        auth="none",
        body=identity_api.LoginRequest,
        response=identity_api.TokenResponse,
        idempotent=False,
        errors=(401, 429),
    )
    def login(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.login(body["email"], body["password"], client_ip=self.scope.client_ip)

    @endpoint(
        "POST",
        "/auth/login/two-factor",
        summary="Log in, second step: the challenge and a code from your authenticator app",
        tags=("accounts",),
        auth="none",
        body=identity_api.TwoFactorLoginRequest,
        response=identity_api.TokenResponse,
        idempotent=False,
        errors=(400, 422, 429),
    )
    def login_two_factor(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """A login whose account has two-factor sign-in answers 401 with reason
        `two_factor_required` and a `challenge` (valid 5 minutes). Send it here with
        `code` (each code is taken once) or one of your `recovery_code`s (each works
        once)."""
        return self.identity.login_two_factor(
            body["challenge"], body.get("code"), body.get("recovery_code")
        )

    @endpoint(
        "POST",
        "/auth/refresh",
        summary="Exchange a refresh token for new tokens (rotation)",
        tags=("accounts",),
        auth="none",
        body=identity_api.RefreshRequest,
        response=identity_api.TokenResponse,
        idempotent=False,
        errors=(401,),
    )
    def refresh(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.refresh(body["refresh_token"])

    @endpoint(
        "POST",
        "/auth/logout",
        summary="Log out: end the session (its refresh and access tokens stop at once)",
        tags=("accounts",),
        auth="none",
        body=identity_api.RefreshRequest,
        status=204,
        idempotent=False,
        errors=(401,),
        reads=("session_views",),
    )
    def logout(self, request: Request, body: dict[str, Any]) -> None:
        self.identity.logout(body["refresh_token"])
        session_id = body["refresh_token"].split(".", 1)[0]
        self._sessions_show(lambda conn: identity_views.session_revoked(conn, session_id))

    @endpoint(
        "POST",
        "/auth/logout-everywhere",
        summary="Log out everywhere: end every session of your account, this one too",
        tags=("accounts",),
        status=204,
        idempotent=False,
        reads=("session_views",),
    )
    def logout_everywhere(self, request: Request) -> None:
        user_id = self._me()
        ended = datetime.fromisoformat(self.identity.logout_everywhere(user_id)["ended_at"])
        self._sessions_show(lambda conn: identity_views.sessions_ended_since(conn, user_id, ended))

    def _sessions_show(self, ended: Callable[[Any], bool]) -> None:
        """Answer once this gateway's sessions view shows the ending: the
        client's next request here is refused at once (gateway/sessions.py
        bounds how late every other gateway process may be)."""

        def shown(conn: Any) -> bool:
            if not ended(conn):
                raise NotFound("not yet visible")
            return True

        try:
            read_when_visible(self.session_views, shown)
        except NotFound:
            log.warning("the sessions view did not show an ending in time")
        gate(self.session_views).forget()

    # -- verification, passwords, addresses --------------------------------------

    @endpoint(
        "POST",
        "/auth/verify-email",
        summary="Verify an email address with the token from the link we mailed",
        tags=("accounts",),
        auth="none",
        body=identity_api.VerifyEmailRequest,
        response=identity_api.VerifiedResponse,
        idempotent=False,
        errors=(400, 409),
    )
    def verify_email(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.verify_email(body["token"])

    @endpoint(
        "POST",
        "/auth/password-reset",
        summary="Mail a password-reset link (the answer is the same for any address)",
        tags=("accounts",),
        auth="none",
        body=identity_api.PasswordResetRequest,
        response=identity_api.AcceptedResponse,
        status=202,
        idempotent=False,
    )
    def request_password_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.request_password_reset(body["email"])

    @endpoint(
        "POST",
        "/auth/password-reset/confirm",
        summary="Choose a new password with the token from the reset link; every session ends",
        tags=("accounts",),
        auth="none",
        body=identity_api.ResetPasswordRequest,
        status=204,
        idempotent=False,
        errors=(400, 422),
    )
    def reset_password(self, request: Request, body: dict[str, Any]) -> None:
        self.identity.reset_password(body["token"], body["password"])

    @endpoint(
        "POST",
        "/me/password",
        summary="Change your password (needs the current one); your other sessions end",
        tags=("accounts",),
        body=identity_api.ChangePasswordRequest,
        status=204,
        idempotent=False,
        errors=(422, 429),
    )
    def change_password(self, request: Request, body: dict[str, Any]) -> None:
        principal = self.scope.principal
        assert principal is not None
        self.identity.change_password(
            principal.user_id, principal.session_id, body["current_password"], body["password"]
        )

    @endpoint(
        "POST",
        "/me/email",
        summary="Change your email address: it changes once you follow the link mailed to it",
        tags=("accounts",),
        body=identity_api.ChangeEmailRequest,
        response=identity_api.MailSentResponse,
        status=202,
        errors=(409, 422, 429),
    )
    def change_email(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.change_email(self._me(), body["email"], body["current_password"])

    @endpoint(
        "POST",
        "/me/email/verification",
        summary="Mail the verification link for your address again",
        tags=("accounts",),
        response=identity_api.MailSentResponse,
        status=202,
        errors=(409,),
    )
    def resend_verification(self, request: Request) -> dict[str, Any]:
        return self.identity.request_email_verification(self._me())

    # -- two-factor sign-in ----------------------------------------------------------

    @endpoint(
        "GET",
        "/me/two-factor",
        summary="Whether two-factor sign-in is on, and how many recovery codes are left",
        tags=("accounts",),
        response=identity_api.TwoFactorStatusResponse,
    )
    def two_factor_status(self, request: Request) -> dict[str, Any]:
        return self.identity.two_factor_status(self._me())

    @endpoint(
        "POST",
        "/me/two-factor",
        summary="Set up two-factor sign-in: a new authenticator secret (needs your password)",
        tags=("accounts",),
        body=identity_api.StartTwoFactorRequest,
        response=identity_api.TwoFactorSetupResponse,
        status=201,
        location="/me/two-factor",
        errors=(409, 422, 429),
        idempotent=False,  # its answer holds secrets: never kept for a replay
    )
    def start_two_factor(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Add the secret (or the otpauth URI, as a QR code) to an authenticator app, then
        confirm with a code from it (POST /me/two-factor/confirm). Required for
        administrators: their sessions have the admin role only when started with a code."""
        return self.identity.start_two_factor(self._me(), body["current_password"])

    @endpoint(
        "POST",
        "/me/two-factor/confirm",
        summary="Turn two-factor sign-in on with a code from the app: your recovery codes, once",
        tags=("accounts",),
        body=identity_api.TwoFactorCodeRequest,
        response=identity_api.RecoveryCodesResponse,
        errors=(409, 422, 429),
        idempotent=False,  # its answer holds secrets: never kept for a replay
    )
    def enable_two_factor(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Every other session ends. Keep the recovery codes somewhere safe: each signs
        you in once without the app."""
        principal = self.scope.principal
        assert principal is not None
        return self.identity.enable_two_factor(
            principal.user_id, principal.session_id, body["code"]
        )

    @endpoint(
        "POST",
        "/me/two-factor/recovery-codes",
        summary="New recovery codes for a code from the app (the old ones stop working)",
        tags=("accounts",),
        body=identity_api.TwoFactorCodeRequest,
        response=identity_api.RecoveryCodesResponse,
        errors=(409, 422, 429),
        idempotent=False,  # its answer holds secrets: never kept for a replay
    )
    def renew_recovery_codes(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.renew_recovery_codes(self._me(), body["code"])

    @endpoint(
        "DELETE",
        "/me/two-factor",
        summary="Turn two-factor sign-in off: your password and a code (not for administrators)",
        tags=("accounts",),
        body=identity_api.DisableTwoFactorRequest,
        status=204,
        errors=(409, 422, 429),
    )
    def disable_two_factor(self, request: Request, body: dict[str, Any]) -> None:
        self.identity.disable_two_factor(
            self._me(), body["current_password"], body.get("code"), body.get("recovery_code")
        )

    # -- erasure -------------------------------------------------------------------

    @endpoint(
        "DELETE",
        "/me",
        summary="Erase your personal data and close your account",
        tags=("accounts",),
        response=identity_api.ErasureResponse,
    )
    def erase_me(self, request: Request) -> dict[str, Any]:
        """Your keys are deleted: what the marketplace recorded of you (email,
        profile, messages, proposal and review texts, file names) reads as
        erased everywhere, and you can no longer log in. Money, contracts and
        reviews stay, without saying who you were. Copy first: GET /me/export."""
        assert self.scope.principal is not None
        return self.identity.erase_personal_data(self.scope.principal.user_id)

    @endpoint(
        "DELETE",
        "/users/<user_id>",
        summary="Erase a user's personal data (administrators)",
        tags=("accounts",),
        response=identity_api.ErasureResponse,
        errors=(403, 404),
        role="admin",
    )
    def erase_user(self, request: Request, user_id: str) -> dict[str, Any]:
        return self.identity.erase_personal_data(user_id)

    # -- profiles --------------------------------------------------------------

    @endpoint(
        "GET",
        "/me",
        summary="Your own profile, with private fields and completeness",
        tags=("profiles",),
        response=identity_api.ProfileResponse,
        reads=("profiles", "reputation_views"),
    )
    def me(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        user_id = self.scope.principal.user_id
        # A valid token proves the account exists; right after sign-up its
        # profile may still be on its way to this view.
        profile = read_when_visible(
            self.profiles, lambda conn: identity_views.get_profile(conn, user_id, user_id)
        )
        return self._with_reputation(profile)

    def _with_reputation(self, profile: dict[str, Any]) -> dict[str, Any]:
        with self.reputation_views.connect() as conn:
            return {**profile, "reputation": reputation_views.summary(conn, profile["user_id"])}

    @endpoint(
        "GET",
        "/users/<user_id>/profile",
        summary="A user's profile (private fields for the owner)",
        tags=("profiles",),
        auth="optional",
        response=identity_api.ProfileResponse,
        errors=(404,),
        cached=True,
        reads=("profiles", "reputation_views"),
    )
    def profile(self, request: Request, user_id: str) -> dict[str, Any]:
        viewer = self.scope.principal.user_id if self.scope.principal else None
        with self.profiles.connect() as conn:
            profile = identity_views.get_profile(conn, user_id, viewer)
        return self._with_reputation(profile)

    @endpoint(
        "PATCH",
        "/users/<user_id>/buyer-profile",
        summary="Change your buyer profile",
        tags=("profiles",),
        body=identity_api.BuyerProfileRequest,
        response=identity_api.ProfileResponse,
        errors=(404, 409),
    )
    def buyer_profile(self, request: Request, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.update_buyer_profile(user_id, json_ready(body))

    @endpoint(
        "PATCH",
        "/users/<user_id>/seller-profile",
        summary="Change your seller profile (headline, bio, rate, photo, skills)",
        tags=("profiles",),
        body=identity_api.SellerProfileRequest,
        response=identity_api.ProfileResponse,
        errors=(404, 409),
    )
    def seller_profile(
        self, request: Request, user_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.update_seller_profile(user_id, json_ready(body))

    @endpoint(
        "POST",
        "/users/<user_id>/experience",
        summary="Add an experience entry",
        tags=("profiles",),
        body=identity_api.ExperienceRequest,
        response=identity_api.ProfileResponse,
        status=201,
        location="/users/{user_id}/profile",
        errors=(404, 409),
    )
    def add_experience(
        self, request: Request, user_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.add_experience(user_id, json_ready(body))

    @endpoint(
        "DELETE",
        "/users/<user_id>/experience/<experience_id>",
        summary="Remove an experience entry",
        tags=("profiles",),
        response=identity_api.ProfileResponse,
        errors=(404,),
    )
    def remove_experience(
        self, request: Request, user_id: str, experience_id: str
    ) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.remove_experience(user_id, experience_id)

    @endpoint(
        "POST",
        "/users/<user_id>/portfolio",
        summary="Add a portfolio item",
        tags=("profiles",),
        body=identity_api.PortfolioItemRequest,
        response=identity_api.ProfileResponse,
        status=201,
        location="/users/{user_id}/profile",
        errors=(404, 409),
    )
    def add_portfolio_item(
        self, request: Request, user_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.add_portfolio_item(user_id, json_ready(body))

    @endpoint(
        "DELETE",
        "/users/<user_id>/portfolio/<item_id>",
        summary="Remove a portfolio item",
        tags=("profiles",),
        response=identity_api.ProfileResponse,
        errors=(404,),
    )
    def remove_portfolio_item(self, request: Request, user_id: str, item_id: str) -> dict[str, Any]:
        self._must_be(user_id)
        return self.identity.remove_portfolio_item(user_id, item_id)

    # -- talent search and saved freelancers ----------------------------------------

    @endpoint(
        "GET",
        "/freelancers",
        summary="Search freelancers: text, skills, rate, job success and reviews",
        tags=("profiles",),
        auth="optional",
        query=identity_api.FreelancerSearchQuery,
        response=identity_api.FreelancerSearchPage,
        cached=True,
        reads=("profiles", "reputation_views"),
    )
    def search_freelancers(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        """Full text over headline, bio, skills and experience; sorted by relevance
        when `q` is given, else by job success (sellers without a score last).
        Paging, `total` and `skill_counts` as in project search."""
        with self.profiles.connect() as conn:
            return talent.search_freelancers(conn, query)

    @endpoint(
        "GET",
        "/me/saved-freelancers",
        summary="Your saved freelancers, most recently saved first",
        tags=("profiles",),
        query=PageQuery,
        response=identity_api.SavedFreelancerPage,
        role="buyer",
        reads=("profiles", "reputation_views"),
    )
    def saved_freelancers(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        with self.profiles.connect() as conn:
            page = identity_views.list_saved(conn, self._me(), query["limit"], query["cursor"])
        seller_ids = [item["seller_id"] for item in page["items"]]
        with self.reputation_views.connect() as conn:
            reputations = reputation_views.summaries(conn, seller_ids, "seller")
        for item in page["items"]:
            item["freelancer"]["reputation"] = reputations.get(item["seller_id"])
        return page

    @endpoint(
        "PUT",
        "/me/saved-freelancers/<seller_id>",
        summary="Save a freelancer to your list (saving again changes nothing)",
        tags=("profiles",),
        status=204,
        errors=(404, 422),
        role="buyer",
        reads=("profiles",),
    )
    def save_freelancer(self, request: Request, seller_id: str) -> None:
        buyer_id = self._me()
        with self.profiles.connect() as conn:
            state = identity_views.seller_state(conn, seller_id)
        if state == "missing":
            raise NotFound("no such seller")
        if state == "not_seller":
            raise InvalidInput(
                "this user is not a seller", {"fields": {"seller_id": ["Not a seller."]}}
            )
        self.identity.save_freelancer(buyer_id, seller_id)
        self._saved_shows(buyer_id, seller_id, True)

    @endpoint(
        "DELETE",
        "/me/saved-freelancers/<seller_id>",
        summary="Take a freelancer off your list",
        tags=("profiles",),
        status=204,
        role="buyer",
        reads=("profiles",),
    )
    def unsave_freelancer(self, request: Request, seller_id: str) -> None:
        buyer_id = self._me()
        self.identity.unsave_freelancer(buyer_id, seller_id)
        self._saved_shows(buyer_id, seller_id, False)

    def _saved_shows(self, buyer_id: str, seller_id: str, saved: bool) -> None:
        self._shown(
            self.profiles,
            lambda conn: {"saved": identity_views.is_saved(conn, buyer_id, seller_id)},
            lambda found: found["saved"] is saved,
        )
