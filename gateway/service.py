"""The gateway: the HTTP API in front of the services, for web and mobile frontends.

Routes are declared with ``@endpoint`` (see ``gateway.endpoint`` for the
conventions every route gets), one module per bounded context under
``gateway.routes``; this service composes them into one Nameko service, and so
one router, and declares the dependencies they use.

Commands go to the owning service by RPC. Reads do not: the gateway runs the
services' published view projections over the event log into its own
database, so a read is one local query rather than an RPC hop, which costs
milliseconds of CPU on both sides (see bench/gateway_reads.py).
"""

from __future__ import annotations

from gateway.blobs import Blobs
from gateway.http import HttpScope
from gateway.idempotency import Idempotency
from gateway.response_cache import ResponseCacheProvider
from gateway.routes import (
    AdminDeskRoutes,
    BiddingRoutes,
    ContractsRoutes,
    EscrowRoutes,
    FilesRoutes,
    HealthRoutes,
    IdentityRoutes,
    MessagingRoutes,
    PrivacyRoutes,
    ProjectsRoutes,
    ReputationRoutes,
)
from gateway.routes.privacy import ForgetAnswers
from gateway.signed_rpc import SignedRpcProxy
from gateway.stream_tickets import Tickets
from services.bidding.views import ProposalsView
from services.contracts.views import ContractsView
from services.escrow.views import EscrowView
from services.identity.views import ProfilesProjection, SessionsView
from services.messaging.views import MessagingView, NotificationsView
from services.projects.views import ProjectsView
from services.reputation.views import ReputationView
from shared.projection import ProjectionWorker


class GatewayService(
    IdentityRoutes,
    ProjectsRoutes,
    BiddingRoutes,
    ContractsRoutes,
    AdminDeskRoutes,
    EscrowRoutes,
    MessagingRoutes,
    ReputationRoutes,
    FilesRoutes,
    HealthRoutes,
    PrivacyRoutes,
):
    name = "gateway"

    scope = HttpScope()
    idempotency = Idempotency()
    tickets = Tickets()
    blobs = Blobs()
    responses = ResponseCacheProvider()
    # The views the gateway follows itself (see gateway.routes.base.RoutesBase).
    profiles = ProjectionWorker(ProfilesProjection())
    session_views = ProjectionWorker(SessionsView())  # gateway/sessions.py: ended sessions
    project_views = ProjectionWorker(ProjectsView())
    proposal_views = ProjectionWorker(ProposalsView())
    contract_views = ProjectionWorker(ContractsView())
    escrow_views = ProjectionWorker(EscrowView())
    messaging_views = ProjectionWorker(MessagingView())
    notification_views = ProjectionWorker(NotificationsView())
    reputation_views = ProjectionWorker(ReputationView())
    # Not a view: drops stored answers that name an erased person (gateway.routes.privacy).
    forgotten_answers = ProjectionWorker(ForgetAnswers())
    # Commands go to the owning service (gateway.routes.health.SERVICES asks each).
    identity = SignedRpcProxy("identity")
    projects = SignedRpcProxy("projects")
    bidding = SignedRpcProxy("bidding")
    contracts = SignedRpcProxy("contracts")
    escrow = SignedRpcProxy("escrow")
    messaging = SignedRpcProxy("messaging")
    reputation = SignedRpcProxy("reputation")
