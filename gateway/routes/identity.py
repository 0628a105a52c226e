"""Identity routes: sign-up and sessions (auth), your own and others' profiles,
portfolio and experience."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, read_when_visible
from services.identity import api as identity_api
from services.identity import views as identity_views
from services.reputation import views as reputation_views
from shared.jsonready import json_ready


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
        summary="Log out: revoke the session's refresh token",
        tags=("accounts",),
        auth="none",
        body=identity_api.RefreshRequest,
        status=204,
        idempotent=False,
        errors=(401,),
    )
    def logout(self, request: Request, body: dict[str, Any]) -> None:
        self.identity.logout(body["refresh_token"])

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
    )
    def erase_user(self, request: Request, user_id: str) -> dict[str, Any]:
        self._role("admin")
        return self.identity.erase_personal_data(user_id)

    # -- profiles --------------------------------------------------------------

    @endpoint(
        "GET",
        "/me",
        summary="Your own profile, with private fields and completeness",
        tags=("profiles",),
        response=identity_api.ProfileResponse,
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
        cached_by=("profiles", "reputation_views"),
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
