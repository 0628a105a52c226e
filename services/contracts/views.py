"""Contracts' published read side: contracts and every version of their offer."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.errors import NotFound
from shared.jsonready import json_ready
from shared.projection import Projection
from shared.schemas import DecodedEvent

metadata = sa.MetaData()

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("proposal_id", sa.String(64), nullable=False),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("offer_version", sa.Integer, nullable=False),
    sa.Column("review_days", sa.Integer, nullable=False),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

offer_versions = sa.Table(
    "offer_versions",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)

_STATUS = {
    "OfferChangesRequested": "changes_requested",
    "OfferDeclined": "declined",
    "ContractStarted": "active",
}


class ContractsView(Projection):
    name = "contracts"
    version = 1
    metadata = metadata
    categories = ("contract",)
    event_types = (
        "OfferSent",
        "OfferRevised",
        "OfferChangesRequested",
        "OfferDeclined",
        "ContractStarted",
    )

    def apply(self, conn: Connection, event: DecodedEvent) -> None:
        data, at = json_ready(event.data), event.recorded.recorded_at
        contract_id = event.recorded.stream.split("-", 1)[1]
        where = contracts.c.contract_id == contract_id
        if event.type == "OfferSent":
            keys = (
                "contract_id",
                "project_id",
                "proposal_id",
                "buyer_id",
                "seller_id",
                "review_days",
                "terms",
            )
            conn.execute(
                contracts.insert().values(
                    **{k: data[k] for k in keys}, status="offered", offer_version=1, updated_at=at
                )
            )
            conn.execute(
                offer_versions.insert().values(
                    contract_id=contract_id, version=1, terms=data["terms"], sent_at=at
                )
            )
        elif event.type == "OfferRevised":
            conn.execute(
                contracts.update()
                .where(where)
                .values(
                    status="offered",
                    offer_version=data["version"],
                    terms=data["terms"],
                    updated_at=at,
                )
            )
            conn.execute(
                offer_versions.insert().values(
                    contract_id=contract_id,
                    version=data["version"],
                    terms=data["terms"],
                    sent_at=at,
                )
            )
        else:
            conn.execute(
                contracts.update().where(where).values(status=_STATUS[event.type], updated_at=at)
            )


def get_contract(conn: Connection, contract_id: str) -> dict[str, Any]:
    row = conn.execute(
        sa.select(contracts).where(contracts.c.contract_id == contract_id)
    ).one_or_none()
    if row is None:
        raise NotFound("no such contract")
    return {k: v for k, v in row._mapping.items() if k != "updated_at"}


def list_versions(conn: Connection, contract_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(offer_versions)
        .where(offer_versions.c.contract_id == contract_id)
        .order_by(offer_versions.c.version)
    ).all()
    return [
        {"version": r.version, "terms": r.terms, "sent_at": json_ready(r.sent_at)} for r in rows
    ]


def list_for_user(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(contracts)
        .where(sa.or_(contracts.c.buyer_id == user_id, contracts.c.seller_id == user_id))
        .order_by(contracts.c.updated_at.desc())
    ).all()
    return [{k: v for k, v in r._mapping.items() if k != "updated_at"} for r in rows]
