"""The contracts service. An empty service for now: its issue fills it in."""

from __future__ import annotations

from shared.service import MarketplaceService


class ContractsService(MarketplaceService):
    name = "contracts"
