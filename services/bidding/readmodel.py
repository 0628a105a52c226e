"""Bidding's own read model, by project: which invitations are open, so that
they close when their project ends, and which proposals are open, so that they
read "not selected" when another is hired (the published views are in ``views``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.database import Database
from shared.projection import Projection
from shared.schemas import PublishedEvent

metadata = sa.MetaData()
open_invites = sa.Table(
    "bidding_open_invitations",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), primary_key=True),
)

open_proposal_ids = sa.Table(
    "bidding_open_proposals",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("proposal_id", sa.String(64), primary_key=True),
)


class OpenInvitations(Projection):
    name = "bidding_open_invitations"
    metadata = metadata
    categories = ("invitation",)
    event_types = ("SellerInvited", "InvitationAccepted", "InvitationDeclined", "InvitationClosed")

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        key = (event.data["project_id"], event.data["seller_id"])
        t = open_invites
        conn.execute(t.delete().where(t.c.project_id == key[0], t.c.seller_id == key[1]))
        if event.type == "SellerInvited":
            conn.execute(t.insert().values(project_id=key[0], seller_id=key[1]))


def open_invitations(db: Database, project_id: str) -> list[str]:
    """The sellers whose invitation to the project is open."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(open_invites.c.seller_id).where(open_invites.c.project_id == project_id)
        ).all()
    return [r.seller_id for r in rows]


class OpenProposals(Projection):
    name = "bidding_open_proposals"
    metadata = metadata
    categories = ("proposal",)
    event_types = (
        "ProposalSubmitted",
        "ProposalWithdrawn",
        "ProposalDeclined",
        "ProposalHired",
        "ProposalNotSelected",
    )

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        t = open_proposal_ids
        if event.type == "ProposalSubmitted":
            conn.execute(
                t.insert().values(project_id=event.data["project_id"], proposal_id=event.subject)
            )
        else:
            conn.execute(t.delete().where(t.c.proposal_id == event.subject))


def open_proposals(db: Database, project_id: str) -> list[str]:
    """The project's proposals still open (submitted, not yet decided)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(open_proposal_ids.c.proposal_id).where(
                open_proposal_ids.c.project_id == project_id
            )
        ).all()
    return [r.proposal_id for r in rows]
