"""The contracts service's events: its published API.

Only what other services already react to is declared so far; the contracts
issue adds the rest of the contract's life.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.schemas import registry


@registry.event("ContractStarted")
class ContractStarted(Schema):
    """An offer was accepted: the project is awarded to the seller."""

    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
