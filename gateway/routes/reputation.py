"""Reputation routes: reviewing the other party of an ended contract, and reading
reviews."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase
from services.reputation import api as reputation_api
from services.reputation import views as reputation_views
from shared.jsonready import json_ready


class ReputationRoutes(RoutesBase):
    """Reviews of ended contracts, and the reviews a user has received."""

    # -- reviews and reputation -----------------------------------------------------

    @endpoint(
        "POST",
        "/contracts/<contract_id>/reviews",
        summary="Review the other party of an ended contract (once; shown when both "
        "reviewed or the window closed)",
        tags=("reputation",),
        body=reputation_api.ReviewRequest,
        response=reputation_api.SubmittedResponse,
        status=201,
        location="/contracts/{contract_id}/reviews",
        errors=(404, 409),
        reads=("contract_views",),
    )
    def submit_review(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._known_contract(contract_id)
        return self.reputation.submit_review(contract_id, json_ready(body))

    @endpoint(
        "GET",
        "/contracts/<contract_id>/reviews",
        summary="A contract's reviews: yours, and the other party's once revealed",
        tags=("reputation",),
        response=reputation_api.ContractReviews,
        errors=(404,),
        reads=("contract_views", "reputation_views"),
    )
    def contract_reviews(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.reputation_views.connect() as conn:
            return reputation_views.contract_reviews(conn, contract_id, self._me())

    @endpoint(
        "GET",
        "/users/<user_id>/reviews",
        summary="A user's revealed reviews",
        tags=("reputation",),
        auth="optional",
        response=reputation_api.ReviewList,
        reads=("reputation_views",),
    )
    def user_reviews(self, request: Request, user_id: str) -> dict[str, Any]:
        with self.reputation_views.connect() as conn:
            return {"items": reputation_views.reviews_of(conn, user_id)}
