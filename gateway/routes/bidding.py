"""Bidding routes: sellers' proposals on projects, how buyers sort them, and
buyers' invitations to propose."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase, read_when_visible
from services.bidding import api as bidding_api
from services.bidding import views as bidding_views
from services.identity import views as identity_views
from services.messaging import views as messaging_views
from services.projects import views as projects_views
from services.reputation import views as reputation_views
from shared.api import ReasonRequest
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.jsonready import json_ready


class BiddingRoutes(RoutesBase):
    """Sellers propose; the project's buyer sorts, declines and invites."""

    # -- proposals -------------------------------------------------------------

    @endpoint(
        "POST",
        "/projects/<project_id>/proposals",
        summary="Send a proposal",
        tags=("proposals",),
        body=bidding_api.ProposalRequest,
        response=bidding_api.ProposalResponse,
        status=201,
        location="/proposals/{proposal_id}",
        errors=(403, 404, 409),
        role="seller",
        verified=True,
        reads=("profiles", "project_views", "proposal_views"),
    )
    def submit_proposal(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._open_project(project_id)
        self._own_files(body["attachment_ids"], "proposal", "attachment_ids")
        self._own_samples(body["portfolio_item_ids"])
        submitted = self.bidding.submit_proposal(project_id, json_ready(body))
        proposal_id = str(submitted["proposal_id"])
        self._shown(self.proposal_views, lambda c: bidding_views.get_proposal(c, proposal_id))
        return submitted

    @endpoint(
        "GET",
        "/projects/<project_id>/proposals",
        summary="The proposals on your project, with each seller's summary",
        tags=("proposals",),
        query=bidding_api.ProposalQuery,
        response=bidding_api.ProposalPage,
        errors=(404,),
        cached=True,
        reads=("profiles", "project_views", "proposal_views", "reputation_views"),
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
            samples = identity_views.portfolio_samples(
                conn, {p["seller_id"]: p.get("portfolio_item_ids") or [] for p in page["items"]}
            )
        with self.reputation_views.connect() as conn:
            reputations = reputation_views.summaries(conn, seller_ids, "seller")
        self._changed_since(page["items"])
        for item in page["items"]:
            summary = sellers.get(item["seller_id"], {"user_id": item["seller_id"], "skills": []})
            item["seller"] = {**summary, "reputation": reputations.get(item["seller_id"])}
            shown = item.get("portfolio_item_ids") or []
            item["samples"] = [samples[i] for i in shown if i in samples]
        return page

    def _changed_since(self, proposals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Whether each proposal's project was edited after the version it answers."""
        with self.project_views.connect() as conn:
            current = projects_views.current_versions(conn, {p["project_id"] for p in proposals})
        for p in proposals:
            p["project_changed_since"] = current.get(p["project_id"], 0) > p["project_version"]
        return proposals

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
        reads=("proposal_views", "project_views"),
    )
    def get_proposal(self, request: Request, proposal_id: str) -> dict[str, Any]:
        assert self.scope.principal is not None
        viewer = self.scope.principal.user_id
        with self.proposal_views.connect() as conn:
            proposal = bidding_views.get_proposal(conn, proposal_id)
        self._changed_since([proposal])
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
        reads=("proposal_views", "project_views"),
    )
    def my_proposals(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        query = {**query, "archived": None, "shortlisted": None}
        with self.proposal_views.connect() as conn:
            page = bidding_views.list_proposals(conn, query, seller_id=self.scope.principal.user_id)
        page["items"] = [self._seller_view(p) for p in self._changed_since(page["items"])]
        return page

    @endpoint(
        "PATCH",
        "/proposals/<proposal_id>",
        summary="Edit your proposal",
        tags=("proposals",),
        body=bidding_api.ProposalEditRequest,
        response=bidding_api.ProposalResponse,
        errors=(404, 409),
        reads=("profiles",),
    )
    def edit_proposal(
        self, request: Request, proposal_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._own_files(body.get("attachment_ids") or [], "proposal", "attachment_ids")
        self._own_samples(body.get("portfolio_item_ids") or [])
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
        location="/projects/{project_id}/invitations/{seller_id}",
        errors=(404, 409),
        reads=("profiles", "project_views", "proposal_views"),
    )
    def invite(self, request: Request, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Only an existing seller who is not you; one invitation per project and
        seller (409 while it is open, or once it was accepted or declined). The
        seller accepts (a conversation about it opens) or declines; it closes
        when the project ends."""
        self._open_project(project_id)
        seller_id = str(body["seller_id"])
        with self.profiles.connect() as conn:
            seller = identity_views.is_seller(conn, seller_id)
        if seller is None:
            raise NotFound("no such user")
        if not seller or seller_id == self._me():
            raise InvalidInput(
                "invite a seller (not yourself)",
                {"fields": {"seller_id": ["Not a seller's account."]}},
            )
        invited = self.bidding.invite_seller(project_id, seller_id, body["message"])
        self._shown(
            self.proposal_views,
            lambda c: bidding_views.get_invitation(c, project_id, seller_id) or {},
            ready=bool,
        )
        return dict(invited)

    @endpoint(
        "POST",
        "/projects/<project_id>/invitations/<seller_id>/accept",
        summary="Accept an invitation (the invited seller): a conversation about it opens",
        tags=("proposals",),
        response=bidding_api.InvitationResponse,
        errors=(404, 409),
        reads=("messaging_views", "proposal_views"),
    )
    def accept_invitation(
        self, request: Request, project_id: str, seller_id: str
    ) -> dict[str, Any]:
        self._must_be(seller_id)
        self.bidding.accept_invitation(project_id, seller_id)
        found = read_when_visible(
            self.proposal_views,
            lambda conn: self._answered(conn, project_id, seller_id, "accepted"),
        )
        conversation = read_when_visible(
            self.messaging_views,
            lambda conn: messaging_views.invitation_conversation(conn, project_id, seller_id),
        )
        return {**found, "conversation_id": conversation}

    @endpoint(
        "POST",
        "/projects/<project_id>/invitations/<seller_id>/decline",
        summary="Decline an invitation (the invited seller), with a reason for the buyer",
        tags=("proposals",),
        body=ReasonRequest,
        response=bidding_api.InvitationResponse,
        errors=(404, 409),
        reads=("proposal_views",),
    )
    def decline_invitation(
        self, request: Request, project_id: str, seller_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._must_be(seller_id)
        self.bidding.decline_invitation(project_id, seller_id, body["reason"])
        return dict(
            read_when_visible(
                self.proposal_views,
                lambda conn: self._answered(conn, project_id, seller_id, "declined"),
            )
        )

    @staticmethod
    def _answered(conn: Any, project_id: str, seller_id: str, status: str) -> dict[str, Any]:
        found = bidding_views.get_invitation(conn, project_id, seller_id)
        if found is None or found["status"] != status:
            raise NotFound("not yet visible")
        return found

    @endpoint(
        "GET",
        "/projects/<project_id>/invitations/<seller_id>",
        summary="One invitation: for the buyer who sent it and the seller invited",
        tags=("proposals",),
        response=bidding_api.InvitationResponse,
        errors=(404,),
        reads=("messaging_views", "proposal_views"),
    )
    def invitation(self, request: Request, project_id: str, seller_id: str) -> dict[str, Any]:
        assert self.scope.principal is not None
        caller = self.scope.principal.user_id
        with self.proposal_views.connect() as conn:
            found = bidding_views.get_invitation(conn, project_id, seller_id)
        if found is None or caller not in (found["buyer_id"], found["seller_id"]):
            raise NotFound("no such invitation")
        if found["status"] == "accepted":
            with self.messaging_views.connect() as conn:
                found["conversation_id"] = messaging_views.invitation_conversation(
                    conn, project_id, seller_id, missing_ok=True
                )
        return found

    @endpoint(
        "GET",
        "/me/invitations",
        summary="Projects you were invited to",
        tags=("proposals",),
        response=bidding_api.InvitationList,
        reads=("proposal_views",),
    )
    def my_invitations(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.proposal_views.connect() as conn:
            return {"items": bidding_views.list_invitations(conn, self.scope.principal.user_id)}
