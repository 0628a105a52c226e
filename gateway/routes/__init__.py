"""The gateway's routes, one module per bounded context, composed into one
service (and so one router) by ``gateway.service.GatewayService``.

Each module appends its routes to ``gateway.endpoint.ROUTES`` as it is imported,
and the OpenAPI document lists them in that order: the imports below, in the
order of the contexts, fix it whichever module is imported first.
"""

# isort: off
from gateway.routes.identity import IdentityRoutes
from gateway.routes.projects import ProjectsRoutes
from gateway.routes.bidding import BiddingRoutes
from gateway.routes.contracts import AdminDeskRoutes, ContractsRoutes
from gateway.routes.escrow import EscrowRoutes
from gateway.routes.messaging import MessagingRoutes
from gateway.routes.reputation import ReputationRoutes
from gateway.routes.files import FilesRoutes
from gateway.routes.health import HealthRoutes
from gateway.routes.privacy import PrivacyRoutes
# isort: on

CONTEXTS = (
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
)
"""Every context's routes, in the order of the API document."""
