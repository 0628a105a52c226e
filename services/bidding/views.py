"""Bidding's published read side: proposals and invitations, projected from
bidding's events, and the queries that read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.errors import NotFound
from shared.jsonready import json_ready
from shared.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent

metadata = sa.MetaData()

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("proposal_id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), nullable=False, index=True),
    sa.Column("buyer_id", sa.String(64), nullable=False),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("shortlisted", sa.Boolean, nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False),
    sa.Column("project_version", sa.Integer, nullable=False),
    sa.Column("cover_letter", sa.Text, nullable=False),
    sa.Column("price", sa.JSON, nullable=False),
    sa.Column("price_amount", sa.BigInteger, nullable=False),
    sa.Column("duration_days", sa.Integer, nullable=False),
    sa.Column("milestones", sa.JSON, nullable=False),
    sa.Column("portfolio_item_ids", sa.JSON, nullable=False),
    sa.Column("attachment_ids", sa.JSON, nullable=False),
    sa.Column("decline_reason", sa.Text),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),
    sa.Column("reason", sa.Text),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
)

_INVITATION_STATUS = {
    "InvitationAccepted": "accepted",
    "InvitationDeclined": "declined",
    "InvitationClosed": "closed",
}

_FLAGS = {
    "ProposalWithdrawn": {"status": "withdrawn"},
    "ProposalHired": {"status": "hired"},
    "ProposalNotSelected": {"status": "not_selected"},
    "ProposalShortlisted": {"shortlisted": True},
    "ProposalUnshortlisted": {"shortlisted": False},
    "ProposalArchived": {"archived": True},
}


class ProposalsView(Projection):
    name = "proposals"
    version = 3
    metadata = metadata
    categories = ("proposal", "invitation", "user")
    event_types = (
        "PersonalDataErased",
        "ProposalSubmitted",
        "ProposalEdited",
        "ProposalWithdrawn",
        "ProposalShortlisted",
        "ProposalUnshortlisted",
        "ProposalArchived",
        "ProposalDeclined",
        "ProposalHired",
        "ProposalNotSelected",
        "SellerInvited",
        *_INVITATION_STATUS,
    )

    # ``PersonalDataErased``: what the log reads as once the person's keys are
    # gone (their fields "[erased]"), so live processing equals a rebuild.

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        data, at = event.data, event.recorded_at
        if event.type == "PersonalDataErased":
            person = data["user_id"]
            conn.execute(
                proposals.update()
                .where(proposals.c.seller_id == person)
                .values(cover_letter=ERASED)
            )
            conn.execute(
                proposals.update()
                .where(proposals.c.buyer_id == person, proposals.c.decline_reason.is_not(None))
                .values(decline_reason=ERASED)
            )
            conn.execute(
                invitations.update().where(invitations.c.buyer_id == person).values(message=ERASED)
            )
            conn.execute(
                invitations.update()
                .where(invitations.c.seller_id == person, invitations.c.status == "declined")
                .values(reason=ERASED)
            )
            return
        if event.type in _INVITATION_STATUS:
            conn.execute(
                invitations.update()
                .where(
                    invitations.c.project_id == data["project_id"],
                    invitations.c.seller_id == data["seller_id"],
                )
                .values(
                    status=_INVITATION_STATUS[event.type], reason=data.get("reason"), answered_at=at
                )
            )
            return
        if event.type == "SellerInvited":
            conn.execute(
                invitations.delete().where(
                    invitations.c.project_id == data["project_id"],
                    invitations.c.seller_id == data["seller_id"],
                )
            )
            conn.execute(invitations.insert().values(**data, invited_at=at, status="open"))
            return
        proposal_id = event.subject
        where = proposals.c.proposal_id == proposal_id
        if event.type == "ProposalSubmitted":
            conn.execute(
                proposals.insert().values(
                    proposal_id=proposal_id,
                    project_id=data["project_id"],
                    buyer_id=data["buyer_id"],
                    seller_id=data["seller_id"],
                    status="submitted",
                    shortlisted=False,
                    archived=False,
                    submitted_at=at,
                    updated_at=at,
                    **self._content(data),
                )
            )
        elif event.type == "ProposalEdited":
            current = dict(conn.execute(sa.select(proposals).where(where)).one()._mapping)
            merged = {**current, **data}
            conn.execute(
                proposals.update().where(where).values(updated_at=at, **self._content(merged))
            )
        elif event.type == "ProposalDeclined":
            conn.execute(
                proposals.update()
                .where(where)
                .values(status="declined", decline_reason=data["reason"], updated_at=at)
            )
        else:
            conn.execute(
                proposals.update().where(where).values(updated_at=at, **_FLAGS[event.type])
            )

    @staticmethod
    def _content(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "project_version": data["project_version"],
            "cover_letter": data["cover_letter"],
            "price": data["price"],
            "price_amount": data["price"]["amount"],
            "duration_days": data["duration_days"],
            "milestones": data.get("milestones") or [],
            "portfolio_item_ids": data.get("portfolio_item_ids") or [],
            "attachment_ids": data.get("attachment_ids") or [],
        }


def proposal_view(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    m.pop("price_amount", None)
    m["submitted_at"], m["updated_at"] = json_ready(m["submitted_at"]), json_ready(m["updated_at"])
    return m


def get_proposal(conn: Connection, proposal_id: str) -> dict[str, Any]:
    row = conn.execute(
        sa.select(proposals).where(proposals.c.proposal_id == proposal_id)
    ).one_or_none()
    if row is None:
        raise NotFound("no such proposal")
    return proposal_view(row)


_SORTS = {
    "newest": ("submitted_at", True),
    "price": ("price_amount", False),
    "duration": ("duration_days", False),
}


def list_proposals(conn: Connection, query: dict[str, Any], **where: str) -> dict[str, Any]:
    """A page of proposals (``where``: project_id and/or seller_id), filtered and sorted."""
    p = proposals.c
    conditions = [p[k] == v for k, v in where.items()]
    if query.get("status"):
        conditions.append(p.status == query["status"])
    if query.get("shortlisted") is not None:
        conditions.append(p.shortlisted == query["shortlisted"])
    if query.get("archived") is not None:
        conditions.append(p.archived == query["archived"])
    key, descending = _SORTS[query["sort"]]
    column = p[key]
    cursor = decode_cursor(query.get("cursor"))
    if cursor is not None:
        try:
            value = (
                datetime.fromisoformat(cursor["v"]) if key == "submitted_at" else int(cursor["v"])
            )
            last = str(cursor["id"])
        except (KeyError, TypeError, ValueError):
            raise BAD_CURSOR from None
        conditions.append(
            sa.or_(column < value, sa.and_(column == value, p.proposal_id < last))
            if descending
            else sa.or_(column > value, sa.and_(column == value, p.proposal_id > last))
        )
    order = (
        (column.desc(), p.proposal_id.desc()) if descending else (column.asc(), p.proposal_id.asc())
    )
    limit = query["limit"]
    rows = conn.execute(
        sa.select(proposals).where(*conditions).order_by(*order).limit(limit + 1)
    ).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last_row = page[-1]._mapping
        next_cursor = encode_cursor({"v": json_ready(last_row[key]), "id": last_row["proposal_id"]})
    return {"items": [proposal_view(r) for r in page], "next_cursor": next_cursor}


def get_invitation(conn: Connection, project_id: str, seller_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(invitations).where(
            invitations.c.project_id == project_id, invitations.c.seller_id == seller_id
        )
    ).first()
    return None if row is None else invitation_view(row)


def invitation_view(row: Any) -> dict[str, Any]:
    found = dict(row._mapping)
    return {
        **found,
        "invited_at": json_ready(found["invited_at"]),
        "answered_at": json_ready(found["answered_at"]),
    }


def list_invitations(conn: Connection, seller_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(invitations)
        .where(invitations.c.seller_id == seller_id)
        .order_by(invitations.c.invited_at.desc())
    ).all()
    return [invitation_view(r) for r in rows]
