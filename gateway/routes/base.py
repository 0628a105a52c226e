"""What every context's routes share: the gateway's dependencies, as a handler
sees them, and the checks of who the caller is and what they are party to.

Who may act on what is checked here and again in the service that owns the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import eventlet

from gateway.blobs import Uploads
from gateway.http import RequestScope
from gateway.idempotency import IdempotencyStore
from gateway.response_cache import ResponseCache
from gateway.stream_tickets import StreamTickets
from services.bidding import views as bidding_views
from services.contracts import views as contracts_views
from services.identity import views as identity_views
from services.projects import views as projects_views
from shared.attachments import check_samples, refusal
from shared.errors import Conflict, Forbidden, NotFound
from shared.logging import get_logger
from shared.projection import ProjectionHandle

T = TypeVar("T")
log = get_logger(__name__)


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


def today() -> date:
    return datetime.now(UTC).date()


class RoutesBase:
    """The dependencies ``GatewayService`` declares (gateway/service.py), typed as
    Nameko injects them into a worker; each context's routes subclass this."""

    scope: RequestScope
    idempotency: IdempotencyStore
    tickets: StreamTickets
    blobs: Uploads
    responses: ResponseCache
    profiles: ProjectionHandle
    session_views: ProjectionHandle
    project_views: ProjectionHandle
    proposal_views: ProjectionHandle
    contract_views: ProjectionHandle
    escrow_views: ProjectionHandle
    messaging_views: ProjectionHandle
    notification_views: ProjectionHandle
    reputation_views: ProjectionHandle
    identity: Any
    projects: Any
    bidding: Any
    contracts: Any
    escrow: Any
    messaging: Any
    reputation: Any

    def _me(self) -> str:
        assert self.scope.principal is not None
        return self.scope.principal.user_id

    def _must_be(self, user_id: str) -> None:
        principal = self.scope.principal
        if principal is None or principal.user_id != user_id:
            raise Forbidden("you can only change your own account")

    # -- what a command needs to exist, checked in the gateway's own views ----------
    # A service waits a moment for a fact it has not heard of yet (shared.facts),
    # which only what exists deserves: what these views never saw is a 404 (or a
    # 422, for attachments) here, at once, before any RPC.

    def _shown(
        self,
        views: ProjectionHandle,
        read: Callable[[Any], dict[str, Any]],
        ready: Callable[[dict[str, Any]], bool] = lambda found: True,
    ) -> None:
        """Read-your-writes: a command answers once the gateway's own view shows
        what it did, so the caller's next request (and the checks below) see it."""

        def shown(conn: Any) -> dict[str, Any]:
            found = read(conn)
            if not ready(found):
                raise NotFound("not yet visible")
            return found

        try:
            read_when_visible(views, shown)
        except NotFound:
            # The command succeeded: its answer stands (and is what a retry with
            # the same Idempotency-Key replays); only the view is slow.
            log.warning("view did not show a command's effect in time")

    def _open_project(self, project_id: str) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            project = projects_views.get_project(conn, project_id)
        if project["status"] != "open":
            raise Conflict(
                f"the project is {project['status']}",
                {"reason": "project_not_open", "state": project["status"]},
            )
        return project

    def _known_proposal(self, proposal_id: str) -> dict[str, Any]:
        with self.proposal_views.connect() as conn:
            return bidding_views.get_proposal(conn, proposal_id)

    def _known_contract(self, contract_id: str) -> dict[str, Any]:
        with self.contract_views.connect() as conn:
            return contracts_views.get_contract(conn, contract_id, today())

    def _own_files(self, file_ids: list[Any], kind: str, field: str = "file_ids") -> None:
        """Each a file the caller uploaded, for a purpose that fits ``kind``
        (``shared.attachments.FITS``): 422 at once, before any RPC."""
        wanted = [str(f) for f in file_ids]
        if not wanted:
            return
        with self.profiles.connect() as conn:
            uploaded = identity_views.file_owners_and_purposes(conn, wanted)
        for file_id in wanted:
            owner, purpose = uploaded.get(file_id, (None, None))
            refused = refusal(file_id, owner, purpose, self._me(), kind, field)
            if refused is not None:
                raise refused

    def _own_samples(self, item_ids: list[Any]) -> None:
        """Samples on a proposal are items of the caller's own portfolio."""
        wanted = [str(i) for i in item_ids]
        if not wanted:
            return
        with self.profiles.connect() as conn:
            owned = identity_views.portfolio_item_ids(conn, self._me())
        check_samples(wanted, owned)

    def _contract_for_party(self, contract_id: str) -> dict[str, Any]:
        """The contract, from ``contract_views``, if the caller is one of its parties."""
        assert self.scope.principal is not None
        with self.contract_views.connect() as conn:
            contract = contracts_views.get_contract(conn, contract_id, today())
        if self.scope.principal.user_id not in (contract["buyer_id"], contract["seller_id"]):
            raise Forbidden("only the contract's parties may see it")
        return contract
