"""The gateway: the HTTP API in front of the services, for web and mobile frontends.

Routes are declared with ``@endpoint`` (see ``gateway.endpoint`` for the
conventions every route gets). Who may act on what is checked here and again
in the service that owns the data.

Commands go to the owning service by RPC. Reads do not: the gateway runs the
services' published view projections over the event log into its own
database, so a read is one local query rather than an RPC hop, which costs
milliseconds of CPU on both sides (see bench/gateway_reads.py).
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import eventlet
import orjson
from nameko.rpc import RpcProxy
from werkzeug.wrappers import Request, Response

from gateway.blobs import Blobs
from gateway.endpoint import IDEMPOTENCY_HEADER, cors_headers, endpoint, finish
from gateway.http import HttpScope, json_response, problem
from gateway.idempotency import Idempotency
from gateway.metrics import metrics_response
from gateway.openapi import docs_asset, docs_page, openapi_document
from gateway.response_cache import ResponseCacheProvider
from gateway.server import http
from services.bidding import api as bidding_api
from services.bidding import views as bidding_views
from services.bidding.views import ProposalsView
from services.contracts import api as contracts_api
from services.contracts import views as contracts_views
from services.contracts.views import ContractsView
from services.escrow import api as escrow_api
from services.escrow import views as escrow_views
from services.escrow.views import EscrowView
from services.identity import api as identity_api
from services.identity import views as identity_views
from services.identity.views import ProfilesProjection
from services.messaging import api as messaging_api
from services.messaging import views as messaging_views
from services.messaging.views import MessagingView, NotificationsView
from services.projects import api as projects_api
from services.projects import views as projects_views
from services.projects.views import ProjectsView
from services.reputation import api as reputation_api
from services.reputation import views as reputation_views
from services.reputation.views import ReputationView
from shared.api import ReasonRequest
from shared.blobs import ALLOWED_TYPES, CHUNK_SIZE
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.pagination import PageQuery, page_schema
from shared.projection import ProjectionWorker

log = get_logger(__name__)

SERVICES = ("identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation")
READY_TIMEOUT_SECONDS = 3.0
STREAM_POLL_SECONDS = 0.5
UPLOAD_FORM = {
    "type": "object",
    "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": sorted(ALLOWED_TYPES)},
    },
}


def live_notifications(views: Any, user_id: str, position: int) -> Iterator[bytes]:
    """Server-sent events from the gateway's own inbox view: a green thread per
    connection polls one indexed query; a comment every 15 s keeps proxies from
    closing an idle stream. Each event's id is its log position, which the
    browser sends back as Last-Event-ID when it reconnects."""
    yield b"retry: 2000\n\n"
    idle = 0.0
    while True:
        try:
            with views.connect() as conn:
                fresh = messaging_views.notifications_after(conn, user_id, position)
        except Exception:
            # The client reconnects after `retry` with Last-Event-ID: nothing is missed.
            log.warning("notification stream ended", exc_info=True)
            return
        for item in fresh:
            position = max(position, item["position"])
            yield b"id: %d\nevent: notification\ndata: %s\n\n" % (
                item["position"],
                orjson.dumps(item),
            )
        idle = 0.0 if fresh else idle + STREAM_POLL_SECONDS
        if idle >= 15:
            idle = 0.0
            yield b": keep-alive\n\n"
        eventlet.sleep(STREAM_POLL_SECONDS)


T = TypeVar("T")


def read_when_visible(views: Any, read: Callable[[Any], T], timeout: float = 5.0) -> T:
    """Read what a command just did from the gateway's own view, waiting for
    the view to catch up with it (read-your-writes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with views.connect() as conn:
                return read(conn)
        except NotFound:
            if time.monotonic() > deadline:
                raise
            eventlet.sleep(0.05)


def _today() -> date:
    return datetime.now(UTC).date()


def _safe_filename(name: str | None) -> str:
    cleaned = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name or "")
        if ch.isprintable() and ch not in '/\\"'
    )
    return cleaned.strip()[:200] or "file"


class GatewayService:
    name = "gateway"

    scope = HttpScope()
    idempotency = Idempotency()
    blobs = Blobs()
    responses = ResponseCacheProvider()
    profiles = ProjectionWorker(ProfilesProjection())
    project_views = ProjectionWorker(ProjectsView())
    proposal_views = ProjectionWorker(ProposalsView())
    contract_views = ProjectionWorker(ContractsView())
    escrow_views = ProjectionWorker(EscrowView())
    messaging_views = ProjectionWorker(MessagingView())
    notification_views = ProjectionWorker(NotificationsView())
    reputation_views = ProjectionWorker(ReputationView())
    identity = RpcProxy("identity")
    projects = RpcProxy("projects")
    bidding = RpcProxy("bidding")
    contracts = RpcProxy("contracts")
    escrow = RpcProxy("escrow")
    messaging = RpcProxy("messaging")
    reputation = RpcProxy("reputation")

    def _role(self, role: str) -> str:
        principal = self.scope.principal
        assert principal is not None
        if role not in principal.roles:
            raise Forbidden(f"only {role}s may do this; add the {role} role to your profile")
        return principal.user_id

    def _must_be(self, user_id: str) -> None:
        principal = self.scope.principal
        if principal is None or principal.user_id != user_id:
            raise Forbidden("you can only change your own account")

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
        errors=(409,),
    )
    def register(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.identity.register(body["email"], body["password"], body["roles"])

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

    # -- projects --------------------------------------------------------------

    @endpoint(
        "POST",
        "/projects",
        summary="Post a project",
        tags=("projects",),
        body=projects_api.PostProjectRequest,
        response=projects_api.ProjectResponse,
        status=201,
    )
    def post_project(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._role("buyer")
        return self.projects.post_project(json_ready(body))

    @endpoint(
        "GET",
        "/projects",
        summary="Browse and search projects",
        tags=("projects",),
        auth="optional",
        query=projects_api.SearchQuery,
        response=projects_api.ProjectSearchPage,
        cached_by=("project_views",),
    )
    def search_projects(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            return projects_views.search(conn, query)

    @endpoint(
        "GET",
        "/projects/<project_id>",
        summary="A project",
        tags=("projects",),
        auth="optional",
        response=projects_api.ProjectResponse,
        errors=(404,),
        cached_by=("project_views",),
    )
    def get_project(self, request: Request, project_id: str) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            return projects_views.get_project(conn, project_id)

    @endpoint(
        "PATCH",
        "/projects/<project_id>",
        summary="Edit your open project (a new version)",
        tags=("projects",),
        body=projects_api.EditProjectRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
    )
    def edit_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.projects.edit_project(project_id, json_ready(body))

    @endpoint(
        "POST",
        "/projects/<project_id>/close",
        summary="Close your project to proposals",
        tags=("projects",),
        body=ReasonRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
    )
    def close_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.projects.close_project(project_id, body["reason"])

    @endpoint(
        "POST",
        "/projects/<project_id>/cancel",
        summary="Cancel your project",
        tags=("projects",),
        body=ReasonRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
    )
    def cancel_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.projects.cancel_project(project_id, body["reason"])

    # -- keyword alerts --------------------------------------------------------

    @endpoint(
        "POST",
        "/alerts",
        summary="Save a search as a keyword alert",
        tags=("alerts",),
        body=projects_api.AlertRequest,
        response=projects_api.AlertResponse,
        status=201,
    )
    def save_alert(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._role("seller")
        return self.projects.save_alert(json_ready(body))

    @endpoint(
        "GET",
        "/alerts",
        summary="Your keyword alerts",
        tags=("alerts",),
        response=projects_api.AlertList,
    )
    def list_alerts(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            return {"items": projects_views.list_alerts(conn, self.scope.principal.user_id)}

    @endpoint(
        "DELETE",
        "/alerts/<alert_id>",
        summary="Delete a keyword alert",
        tags=("alerts",),
        status=204,
        errors=(404,),
    )
    def delete_alert(self, request: Request, alert_id: str) -> None:
        self.projects.delete_alert(alert_id)

    @endpoint(
        "GET",
        "/alerts/matches",
        summary="Projects your alerts matched, newest first",
        tags=("alerts",),
        query=PageQuery,
        response=projects_api.AlertMatchPage,
    )
    def alert_matches(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            return projects_views.list_matches(
                conn, self.scope.principal.user_id, query["limit"], query["cursor"]
            )

    # -- proposals -------------------------------------------------------------

    @endpoint(
        "POST",
        "/projects/<project_id>/proposals",
        summary="Send a proposal",
        tags=("proposals",),
        body=bidding_api.ProposalRequest,
        response=bidding_api.ProposalResponse,
        status=201,
        errors=(404, 409),
    )
    def submit_proposal(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._role("seller")
        return self.bidding.submit_proposal(project_id, json_ready(body))

    @endpoint(
        "GET",
        "/projects/<project_id>/proposals",
        summary="The proposals on your project, with each seller's summary",
        tags=("proposals",),
        query=bidding_api.ProposalQuery,
        response=bidding_api.ProposalPage,
        errors=(404,),
        cached_by=("project_views", "proposal_views", "profiles", "reputation_views"),
    )
    def project_proposals(
        self, request: Request, project_id: str, query: dict[str, Any]
    ) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            project = projects_views.get_project(conn, project_id)
        if project["buyer_id"] != self.scope.principal.user_id:
            raise Forbidden("only the project's buyer sees its proposals")
        with self.proposal_views.connect() as conn:
            page = bidding_views.list_proposals(conn, query, project_id=project_id)
        seller_ids = [p["seller_id"] for p in page["items"]]
        with self.profiles.connect() as conn:
            sellers = identity_views.seller_summaries(conn, seller_ids)
        with self.reputation_views.connect() as conn:
            reputations = reputation_views.summaries(conn, seller_ids, "seller")
        for item in page["items"]:
            summary = sellers.get(item["seller_id"], {"user_id": item["seller_id"], "skills": []})
            item["seller"] = {**summary, "reputation": reputations.get(item["seller_id"])}
        return page

    def _seller_view(self, proposal: dict[str, Any]) -> dict[str, Any]:
        """A seller does not see how the buyer sorts their proposals."""
        return {k: v for k, v in proposal.items() if k not in ("shortlisted", "archived")}

    @endpoint(
        "GET",
        "/proposals/<proposal_id>",
        summary="A proposal (its seller or the project's buyer)",
        tags=("proposals",),
        response=bidding_api.ProposalResponse,
        errors=(404,),
    )
    def get_proposal(self, request: Request, proposal_id: str) -> dict[str, Any]:
        assert self.scope.principal is not None
        viewer = self.scope.principal.user_id
        with self.proposal_views.connect() as conn:
            proposal = bidding_views.get_proposal(conn, proposal_id)
        if viewer == proposal["buyer_id"]:
            return proposal
        if viewer == proposal["seller_id"]:
            return self._seller_view(proposal)
        raise Forbidden("only the proposal's seller and the project's buyer may see it")

    @endpoint(
        "GET",
        "/me/proposals",
        summary="Your proposals and their status",
        tags=("proposals",),
        query=bidding_api.ProposalQuery,
        response=bidding_api.ProposalPage,
    )
    def my_proposals(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        query = {**query, "archived": None, "shortlisted": None}
        with self.proposal_views.connect() as conn:
            page = bidding_views.list_proposals(conn, query, seller_id=self.scope.principal.user_id)
        page["items"] = [self._seller_view(p) for p in page["items"]]
        return page

    @endpoint(
        "PATCH",
        "/proposals/<proposal_id>",
        summary="Edit your proposal",
        tags=("proposals",),
        body=bidding_api.ProposalEditRequest,
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
    )
    def edit_proposal(
        self, request: Request, proposal_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self._seller_view(self.bidding.edit_proposal(proposal_id, json_ready(body)))

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/withdraw",
        summary="Withdraw your proposal",
        tags=("proposals",),
        body=ReasonRequest,
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
    )
    def withdraw_proposal(
        self, request: Request, proposal_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self._seller_view(self.bidding.withdraw_proposal(proposal_id, body["reason"]))

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/shortlist",
        summary="Shortlist a proposal",
        tags=("proposals",),
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
    )
    def shortlist(self, request: Request, proposal_id: str) -> dict[str, Any]:
        return self.bidding.shortlist_proposal(proposal_id, True)

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/unshortlist",
        summary="Take a proposal off the shortlist",
        tags=("proposals",),
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
    )
    def unshortlist(self, request: Request, proposal_id: str) -> dict[str, Any]:
        return self.bidding.shortlist_proposal(proposal_id, False)

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/archive",
        summary="Archive a proposal",
        tags=("proposals",),
        response=bidding_api.ProposalResponse,
        errors=(404,),
    )
    def archive(self, request: Request, proposal_id: str) -> dict[str, Any]:
        return self.bidding.archive_proposal(proposal_id)

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/decline",
        summary="Decline a proposal",
        tags=("proposals",),
        body=ReasonRequest,
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
    )
    def decline(self, request: Request, proposal_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.bidding.decline_proposal(proposal_id, body["reason"])

    @endpoint(
        "POST",
        "/projects/<project_id>/invitations",
        summary="Invite a seller to propose",
        tags=("proposals",),
        body=bidding_api.InvitationRequest,
        response=bidding_api.InvitationResponse,
        status=201,
        errors=(404, 409),
    )
    def invite(self, request: Request, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.bidding.invite_seller(project_id, str(body["seller_id"]), body["message"])

    @endpoint(
        "GET",
        "/me/invitations",
        summary="Projects you were invited to",
        tags=("proposals",),
        response=bidding_api.InvitationList,
    )
    def my_invitations(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.proposal_views.connect() as conn:
            return {"items": bidding_views.list_invitations(conn, self.scope.principal.user_id)}

    # -- offers and contracts ----------------------------------------------------

    @endpoint(
        "POST",
        "/proposals/<proposal_id>/offer",
        summary="Send an offer on a proposal",
        tags=("contracts",),
        body=contracts_api.SendOfferRequest,
        response=contracts_api.ContractResponse,
        status=201,
        errors=(404, 409),
    )
    def send_offer(
        self, request: Request, proposal_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.send_offer(proposal_id, json_ready(body))

    def _contract_for_party(self, contract_id: str) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.contract_views.connect() as conn:
            contract = contracts_views.get_contract(conn, contract_id, _today())
        if self.scope.principal.user_id not in (contract["buyer_id"], contract["seller_id"]):
            raise Forbidden("only the contract's parties may see it")
        return contract

    @endpoint(
        "GET",
        "/contracts/<contract_id>",
        summary="A contract or offer, with its milestones (its parties only)",
        tags=("contracts",),
        response=contracts_api.ContractResponse,
        errors=(404,),
    )
    def get_contract(self, request: Request, contract_id: str) -> dict[str, Any]:
        return self._contract_for_party(contract_id)

    @endpoint(
        "GET",
        "/contracts/<contract_id>/offers",
        summary="Every version of the offer",
        tags=("contracts",),
        response=contracts_api.OfferVersionList,
        errors=(404,),
    )
    def offer_versions(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.contract_views.connect() as conn:
            return {"items": contracts_views.list_versions(conn, contract_id)}

    @endpoint(
        "GET",
        "/contracts/<contract_id>/history",
        summary="What happened to the contract's milestones, oldest first",
        tags=("contracts",),
        response=contracts_api.HistoryList,
        errors=(404,),
    )
    def contract_history(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.contract_views.connect() as conn:
            return {"items": contracts_views.list_history(conn, contract_id)}

    @endpoint(
        "GET",
        "/me/contracts",
        summary="Your contracts and offers",
        tags=("contracts",),
        response=contracts_api.ContractList,
    )
    def my_contracts(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.contract_views.connect() as conn:
            return {
                "items": contracts_views.list_for_user(conn, self.scope.principal.user_id, _today())
            }

    @endpoint(
        "POST",
        "/contracts/<contract_id>/request-changes",
        summary="Ask for changes to the offer",
        tags=("contracts",),
        body=contracts_api.MessageRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def request_offer_changes(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.request_offer_changes(contract_id, body["message"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/revise",
        summary="Send a revised offer (a new version)",
        tags=("contracts",),
        body=contracts_api.ReviseOfferRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def revise_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.revise_offer(contract_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/decline",
        summary="Decline the offer",
        tags=("contracts",),
        body=ReasonRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def decline_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.decline_offer(contract_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/accept",
        summary="Accept the offer version you read: the contract starts",
        tags=("contracts",),
        body=contracts_api.AcceptOfferRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def accept_offer(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.accept_offer(contract_id, body["version"])

    # -- milestones ------------------------------------------------------------

    @endpoint(
        "POST",
        "/contracts/<contract_id>/fund",
        summary="Fund milestones: the buyer's card is charged into escrow",
        tags=("escrow",),
        body=escrow_api.FundRequest,
        response=escrow_api.FundingResponse,
        status=201,
        errors=(402, 404, 409),
        key_required=True,
    )
    def fund(self, request: Request, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.escrow.fund_milestones(
            contract_id, json_ready(body), request.headers[IDEMPOTENCY_HEADER]
        )

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/submit",
        summary="Submit work on a funded milestone (the seller)",
        tags=("contracts",),
        body=contracts_api.SubmitWorkRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def submit_work(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.submit_work(contract_id, milestone_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/request-changes",
        summary="Ask for a revision of submitted work (the buyer; counts against the limit)",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def request_milestone_changes(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.request_changes(contract_id, milestone_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/approve",
        summary="Approve submitted work: its escrow is released to the seller",
        tags=("contracts",),
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def approve(self, request: Request, contract_id: str, milestone_id: str) -> dict[str, Any]:
        return self.contracts.approve(contract_id, milestone_id)

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/progress",
        summary="Post a progress update on a milestone (the seller)",
        tags=("contracts",),
        body=contracts_api.NoteRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def report_progress(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.report_progress(contract_id, milestone_id, body["note"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/dispute",
        summary="Dispute a funded milestone (either party): its escrow is frozen",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def open_dispute(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.open_dispute(contract_id, milestone_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/milestones/<milestone_id>/resolve",
        summary="Resolve a dispute with a split (administrators)",
        tags=("contracts",),
        body=contracts_api.ResolveDisputeRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def resolve_dispute(
        self, request: Request, contract_id: str, milestone_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._role("admin")
        return self.contracts.resolve_dispute(contract_id, milestone_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/changes",
        summary="Propose adding, changing or removing a milestone",
        tags=("contracts",),
        body=contracts_api.MilestoneChangeRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
    )
    def propose_change(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.propose_change(contract_id, json_ready(body))

    @endpoint(
        "POST",
        "/contracts/<contract_id>/changes/<change_id>/answer",
        summary="Accept or refuse the other party's proposed change",
        tags=("contracts",),
        body=contracts_api.AnswerRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def answer_change(
        self, request: Request, contract_id: str, change_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.answer_change(contract_id, change_id, body["accept"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/cancellation",
        summary="Propose ending the contract (the buyer ends it at once if nothing is funded)",
        tags=("contracts",),
        body=contracts_api.ChangesRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def propose_cancellation(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.propose_cancellation(contract_id, body["reason"])

    @endpoint(
        "POST",
        "/contracts/<contract_id>/cancellation/answer",
        summary="Agree to (held money is refunded) or refuse the proposed cancellation",
        tags=("contracts",),
        body=contracts_api.AnswerRequest,
        response=contracts_api.ContractResponse,
        errors=(404, 409),
        key_required=True,
    )
    def answer_cancellation(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.contracts.answer_cancellation(contract_id, body["accept"])

    # -- money -------------------------------------------------------------------

    @endpoint(
        "GET",
        "/contracts/<contract_id>/escrow",
        summary="The contract's escrow: what each milestone holds, and every posting",
        tags=("escrow",),
        response=escrow_api.ContractEscrowResponse,
        errors=(404,),
    )
    def contract_escrow(self, request: Request, contract_id: str) -> dict[str, Any]:
        self._contract_for_party(contract_id)
        with self.escrow_views.connect() as conn:
            return escrow_views.contract_escrow(conn, contract_id)

    @endpoint(
        "GET",
        "/me/balance",
        summary="Your money: available to pay out, held in escrow, paid out",
        tags=("escrow",),
        response=escrow_api.BalanceResponse,
    )
    def my_balance(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.escrow_views.connect() as conn:
            return escrow_views.user_summary(conn, self.scope.principal.user_id)

    @endpoint(
        "GET",
        "/me/statement",
        summary="Your statement (format=csv for a spreadsheet), optionally for one contract",
        tags=("escrow",),
        query=escrow_api.StatementQuery,
        response=escrow_api.StatementResponse,
        alternatives=("text/csv",),
    )
    def my_statement(self, request: Request, query: dict[str, Any]) -> Any:
        assert self.scope.principal is not None
        contract_id = str(query["contract_id"]) if query["contract_id"] else None
        with self.escrow_views.connect() as conn:
            lines = escrow_views.statement(conn, self.scope.principal.user_id, contract_id)
        if query["format"] == "csv":
            response = Response(escrow_views.statement_csv(lines), mimetype="text/csv")
            response.headers["Content-Disposition"] = 'attachment; filename="statement.csv"'
            return response
        return {"items": lines}

    @endpoint(
        "POST",
        "/me/payouts",
        summary="Pay out from your available balance (sellers)",
        tags=("escrow",),
        body=escrow_api.PayoutRequest,
        response=escrow_api.PayoutResponse,
        status=201,
        errors=(409,),
        key_required=True,
    )
    def payout(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._role("seller")
        return self.escrow.request_payout(json_ready(body), request.headers[IDEMPOTENCY_HEADER])

    # -- conversations ------------------------------------------------------------

    @endpoint(
        "POST",
        "/conversations",
        summary="Start (or find) the conversation about a proposal or a contract",
        tags=("messages",),
        body=messaging_api.StartConversationRequest,
        response=messaging_api.ConversationResponse,
        errors=(404,),
    )
    def start_conversation(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        started = self.messaging.start_conversation(json_ready(body))
        conversation_id = started["conversation_id"]
        return read_when_visible(
            self.messaging_views,
            lambda conn: messaging_views.get_conversation(conn, conversation_id, self._me()),
        )

    def _me(self) -> str:
        assert self.scope.principal is not None
        return self.scope.principal.user_id

    @endpoint(
        "GET",
        "/me/conversations",
        summary="Your conversations, with unread counts",
        tags=("messages",),
        response=messaging_api.ConversationList,
    )
    def my_conversations(self, request: Request) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            return messaging_views.list_conversations(conn, self._me())

    @endpoint(
        "GET",
        "/conversations/<conversation_id>",
        summary="A conversation, with read receipts (its participants only)",
        tags=("messages",),
        response=messaging_api.ConversationResponse,
        errors=(404,),
    )
    def get_conversation(self, request: Request, conversation_id: str) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            return messaging_views.get_conversation(conn, conversation_id, self._me())

    @endpoint(
        "GET",
        "/conversations/<conversation_id>/messages",
        summary="Messages, newest first (order=desc) or oldest first (order=asc)",
        tags=("messages",),
        query=messaging_api.MessagesQuery,
        response=messaging_api.MessagePage,
        errors=(404,),
        cached_by=("messaging_views",),
    )
    def list_messages(
        self, request: Request, conversation_id: str, query: dict[str, Any]
    ) -> dict[str, Any]:
        with self.messaging_views.connect() as conn:
            messaging_views.get_conversation(conn, conversation_id, self._me())
            return messaging_views.list_messages(
                conn, conversation_id, query["order"], query["limit"], query["cursor"]
            )

    @endpoint(
        "POST",
        "/conversations/<conversation_id>/messages",
        summary="Send a message (text and/or your own files)",
        tags=("messages",),
        body=messaging_api.PostMessageRequest,
        response=messaging_api.MessageResponse,
        status=201,
        errors=(404,),
    )
    def post_message(
        self, request: Request, conversation_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        posted = self.messaging.post_message(conversation_id, json_ready(body))
        return {
            "seq": posted["seq"],
            "message_id": posted["message_id"],
            "sender_id": self._me(),
            "text": body["text"],
            "file_ids": [str(f) for f in body["file_ids"]],
            "sent_at": json_ready(datetime.now(UTC)),
        }

    @endpoint(
        "POST",
        "/conversations/<conversation_id>/read",
        summary="A read receipt: you have read up to this message",
        tags=("messages",),
        body=messaging_api.ReadRequest,
        response=messaging_api.MarkedResponse,
        errors=(404, 409),
    )
    def mark_read(
        self, request: Request, conversation_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.messaging.mark_read(conversation_id, body["up_to"])

    # -- notifications --------------------------------------------------------------

    @endpoint(
        "GET",
        "/me/notifications",
        summary="Your notifications, newest first (unread=true for unread only)",
        tags=("notifications",),
        query=messaging_api.NotificationsQuery,
        response=messaging_api.NotificationPage,
    )
    def my_notifications(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        with self.notification_views.connect() as conn:
            return messaging_views.list_notifications(
                conn, self._me(), query["unread"], query["limit"], query["cursor"]
            )

    @endpoint(
        "POST",
        "/me/notifications/read",
        summary="Mark notifications read: the listed ones, or all",
        tags=("notifications",),
        body=messaging_api.MarkNotificationsRequest,
        response=messaging_api.MarkedResponse,
    )
    def mark_notifications(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        up_to = None
        if body["all"]:
            with self.notification_views.connect() as conn:
                up_to = messaging_views.latest_position(conn, self._me())
        return self.messaging.mark_notifications_read(json_ready(body), up_to)

    @endpoint(
        "GET",
        "/me/notifications/stream",
        summary="Live notifications as server-sent events (resume with Last-Event-ID)",
        tags=("notifications",),
    )
    def notification_stream(self, request: Request) -> Response:
        user = self._me()
        # eventlet's server buffers 4 KB before writing; an event must go out at once.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        last = request.headers.get("Last-Event-ID", "")
        with self.notification_views.connect() as conn:
            position = int(last) if last.isdigit() else messaging_views.latest_position(conn, user)
        return Response(
            live_notifications(self.notification_views, user, position),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

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
        errors=(404, 409),
    )
    def submit_review(
        self, request: Request, contract_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self.reputation.submit_review(contract_id, json_ready(body))

    @endpoint(
        "GET",
        "/contracts/<contract_id>/reviews",
        summary="A contract's reviews: yours, and the other party's once revealed",
        tags=("reputation",),
        response=reputation_api.ContractReviews,
        errors=(404,),
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
    )
    def user_reviews(self, request: Request, user_id: str) -> dict[str, Any]:
        with self.reputation_views.connect() as conn:
            return {"items": reputation_views.reviews_of(conn, user_id)}

    # -- files -----------------------------------------------------------------

    @endpoint(
        "POST",
        "/files",
        summary="Upload a file (multipart form: file, purpose)",
        tags=("files",),
        response=identity_api.FileResponse,
        status=201,
        multipart=UPLOAD_FORM,
        errors=(413, 415),
    )
    def upload(self, request: Request) -> dict[str, Any]:
        limit = self.blobs.max_bytes
        request.max_content_length = limit + 64 * 1024  # multipart overhead
        purpose = request.form.get("purpose", "")
        if purpose not in ALLOWED_TYPES:
            raise InvalidInput(
                "say what the file is for",
                {"fields": {"purpose": [f"One of: {', '.join(sorted(ALLOWED_TYPES))}."]}},
            )
        upload = request.files.get("file")
        if upload is None:
            raise InvalidInput(
                "attach the file as the form field 'file'", {"fields": {"file": ["Missing."]}}
            )
        chunks = iter(lambda: upload.stream.read(CHUNK_SIZE), b"")
        stored = self.blobs.store.put(chunks, max_bytes=limit, allowed=ALLOWED_TYPES[purpose])
        return self.identity.record_file(
            stored.sha256,
            stored.size,
            stored.content_type,
            _safe_filename(upload.filename),
            purpose,
        )

    @endpoint(
        "GET",
        "/files",
        summary="Your uploaded files, newest first",
        tags=("files",),
        query=PageQuery,
        response=page_schema(identity_api.FileResponse),
    )
    def my_files(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.profiles.connect() as conn:
            return identity_views.list_files(
                conn, self.scope.principal.user_id, query["limit"], query["cursor"]
            )

    @endpoint(
        "GET",
        "/files/<file_id>",
        summary="A file's record",
        tags=("files",),
        auth="optional",
        response=identity_api.FileResponse,
        errors=(404,),
    )
    def file_record(self, request: Request, file_id: str) -> dict[str, Any]:
        return self.identity.file_for_download(file_id)

    @endpoint(
        "GET",
        "/files/<file_id>/content",
        summary="Download a file",
        tags=("files",),
        auth="optional",
        errors=(404,),
    )
    def download(self, request: Request, file_id: str) -> Response:
        record = self.identity.file_for_download(file_id)
        response = Response(
            self.blobs.store.iter_chunks(record["sha256"]),
            mimetype=record["content_type"],
            direct_passthrough=True,
        )
        response.headers["Content-Length"] = str(record["size"])
        response.headers["Content-Disposition"] = (
            f"attachment; filename*=UTF-8''{quote(record['filename'])}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["ETag"] = f'"{record["sha256"]}"'
        public = record["visibility"] == "public"
        response.headers["Cache-Control"] = (
            "public, max-age=3600" if public else "private, no-store"
        )
        return response

    # -- documents and operations ---------------------------------------------

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request: Request) -> Response:
        return finish(self.scope, request, json_response(openapi_document()))

    @http("GET", "/docs")
    def docs(self, request: Request) -> Response:
        return docs_page()

    @http("GET", "/docs/static/<name>")
    def docs_static(self, request: Request, name: str) -> Response:
        return docs_asset(name) or problem(404, "not_found", "Not found")

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        return metrics_response()

    @http("OPTIONS", "/api/v1/<path:rest>")
    def preflight(self, request: Request, rest: str) -> Response:
        headers = cors_headers(request)
        if headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                    "Access-Control-Allow-Headers": (
                        "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
                    ),
                    "Access-Control-Max-Age": "600",
                }
            )
        return finish(self.scope, request, Response(status=204, headers=headers))

    @http("GET,POST,PUT,PATCH,DELETE", "/api/v1/<path:rest>")
    def unknown(self, request: Request, rest: str) -> Response:
        return finish(
            self.scope, request, problem(404, "not_found", "Not found", "no such endpoint")
        )

    @http("GET", "/health/live")
    def live(self, request: Request) -> Response:
        """The process is up and serving HTTP."""
        return finish(self.scope, request, json_response({"status": "ok"}))

    @http("GET", "/health/ready")
    def ready(self, request: Request) -> Response:
        """Every service answers its health RPC through the broker in time (and
        reports its event store and database reachable), and the gateway's own
        database and blob store work."""
        components: dict[str, Any] = {"gateway": self._own_health()}
        pending = {}
        for name in SERVICES:
            try:
                pending[name] = getattr(self, name).health.call_async()
            except Exception as exc:  # no queue bound: the service is not running
                components[name] = {"status": "unreachable", "reason": str(exc)}
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for name, reply in pending.items():
            try:
                with eventlet.Timeout(max(0.01, deadline - time.monotonic())):
                    components[name] = reply.result()
            except eventlet.Timeout:
                components[name] = {"status": "unreachable", "reason": "no answer in time"}
            except Exception as exc:
                components[name] = {"status": "failing", "reason": str(exc)}
        ready = all(c.get("status") == "ok" for c in components.values())
        if not ready:
            log.warning("not ready", components=orjson.dumps(components).decode())
        body = {"status": "ready" if ready else "not_ready", "components": components}
        return finish(self.scope, request, json_response(body, status=200 if ready else 503))

    def _own_health(self) -> dict[str, Any]:
        checks: dict[str, str] = dict(self.profiles.health())
        try:
            self.idempotency.engine.connect().close()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {exc}"
        try:
            self.blobs.store.exists("0" * 64)
            checks["blob_store"] = "ok"
        except Exception as exc:
            checks["blob_store"] = f"failing: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        return {"service": "gateway", "status": "ok" if healthy else "failing", "checks": checks}
