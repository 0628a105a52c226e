"""Personal data routes: a copy of everything the marketplace holds about you
(``GET /me/export``), and what the gateway forgets when a person is erased.

Erasure itself is identity's (``DELETE /me``, in the identity routes): its
``PersonalDataErased`` scrubs the gateway's views through the log like any
other event (which also retires cached answers read from them). The gateway
also keeps answers to retried requests (``gateway.idempotency``) outside its
views; those that concern the person are dropped when it reads the event
(:class:`ForgetAnswers`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from werkzeug.wrappers import Request

from gateway.endpoint import endpoint
from gateway.idempotency import idempotency_keys
from gateway.routes.base import RoutesBase
from services.bidding import views as bidding_views
from services.contracts import views as contracts_views
from services.escrow import views as escrow_views
from services.identity import api as identity_api
from services.identity import views as identity_views
from services.messaging import views as messaging_views
from services.projects import views as projects_views
from services.reputation import views as reputation_views
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.projection import Projection
from shared.schemas import PublishedEvent

log = get_logger(__name__)


def _rows(conn: Connection, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    order = [c for c in table.primary_key.columns]
    rows = conn.execute(sa.select(table).where(*where).order_by(*order)).all()
    # (column names are SQLAlchemy's str subclass, which orjson refuses as keys)
    return [json_ready({str(k): v for k, v in row._mapping.items()}) for row in rows]


def _without(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


def _seller_side(found: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The buyer's card reference stays the buyer's, as in the contract view."""
    theirs = {row["contract_id"] for row in found["contracts"] if row.get("buyer_id") != user_id}
    for view in ("contracts", "offer_versions", "contract_history"):
        found[view] = [
            _without(row, "payment_method") if row.get("contract_id") in theirs else row
            for row in found[view]
        ]
    return found


def export(conn: Connection, user_id: str) -> dict[str, Any]:
    """Every row of the gateway's views that is about ``user_id``, by view.

    What others wrote to them is included where it is theirs to read
    (messages in their conversations, reviews of them once revealed)."""
    return _seller_side(_export(conn, user_id), user_id)


def _export(conn: Connection, user_id: str) -> dict[str, Any]:
    u = identity_views.users.c
    profile = conn.execute(sa.select(identity_views.users).where(u.user_id == user_id)).first()
    p, pr = projects_views.projects.c, bidding_views.proposals.c
    c, msg = contracts_views.contracts.c, messaging_views.conversations.c
    contract_ids = sa.select(c.contract_id).where(
        sa.or_(c.buyer_id == user_id, c.seller_id == user_id)
    )
    conversation_ids = sa.select(msg.conversation_id).where(
        sa.or_(msg.buyer_id == user_id, msg.seller_id == user_id)
    )
    reviews = reputation_views.reviews.c
    esc = escrow_views
    accounts = [
        r.account
        for r in conn.execute(
            sa.select(esc.balances.c.account).where(esc.balances.c.account.like(f"%{user_id}%"))
        )
    ]
    return {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": {
            "account": json_ready({str(k): v for k, v in profile._mapping.items()})
            if profile
            else None,
            "files": _rows(conn, identity_views.files, identity_views.files.c.owner_id == user_id),
            "saved_freelancers": _rows(
                conn,
                identity_views.saved_freelancers,
                identity_views.saved_freelancers.c.buyer_id == user_id,
            ),
        },
        "projects": _rows(conn, projects_views.projects, p.buyer_id == user_id),
        "alerts": _rows(conn, projects_views.alerts, projects_views.alerts.c.seller_id == user_id),
        "alert_matches": _rows(
            conn, projects_views.alert_matches, projects_views.alert_matches.c.seller_id == user_id
        ),
        "proposals": _rows(
            conn, bidding_views.proposals, sa.or_(pr.seller_id == user_id, pr.buyer_id == user_id)
        ),
        "invitations": _rows(
            conn,
            bidding_views.invitations,
            sa.or_(
                bidding_views.invitations.c.buyer_id == user_id,
                bidding_views.invitations.c.seller_id == user_id,
            ),
        ),
        "contracts": _rows(conn, contracts_views.contracts, c.contract_id.in_(contract_ids)),
        "offer_versions": _rows(
            conn,
            contracts_views.offer_versions,
            contracts_views.offer_versions.c.contract_id.in_(contract_ids),
        ),
        "contract_history": _rows(
            conn, contracts_views.history, contracts_views.history.c.contract_id.in_(contract_ids)
        ),
        "conversations": _rows(
            conn, messaging_views.conversations, msg.conversation_id.in_(conversation_ids)
        ),
        "messages": _rows(
            conn,
            messaging_views.messages,
            messaging_views.messages.c.conversation_id.in_(conversation_ids),
        ),
        "notifications": _rows(
            conn,
            messaging_views.notifications,
            messaging_views.notifications.c.user_id == user_id,
        ),
        "reviews_written": _rows(conn, reputation_views.reviews, reviews.reviewer_id == user_id),
        "reviews_received": _rows(
            conn, reputation_views.reviews, reviews.reviewee_id == user_id, reviews.visible
        ),
        "reputation": _rows(
            conn,
            reputation_views.reputations,
            reputation_views.reputations.c.user_id == user_id,
        ),
        "payments": {
            "summary": esc.user_summary(conn, user_id),
            "balances": _rows(conn, esc.balances, esc.balances.c.account.in_(accounts)),
            "postings": _rows(conn, esc.postings, esc.postings.c.account.in_(accounts)),
            "charges": _rows(conn, esc.charges, esc.charges.c.buyer_id == user_id),
            "payouts": _rows(conn, esc.payouts, esc.payouts.c.seller_id == user_id),
            "refunds": _rows(conn, esc.refunds, esc.refunds.c.buyer_id == user_id),
            "statement": _rows(conn, esc.statement_lines, esc.statement_lines.c.user_id == user_id),
        },
    }


def forget_answers(conn: Connection, user_id: str) -> int:
    """Drop the stored answers of the person's requests, and of any request
    whose answer names them: a retry of one is then done again (and answered
    as things stand) instead of replaying what it said of them."""
    t = idempotency_keys.c
    text = (
        sa.func.convert_from(t.body, "UTF8")
        if conn.dialect.name == "postgresql"
        else sa.cast(t.body, sa.Text)
    )
    named = text.like(f"%{user_id}%")
    result = conn.execute(
        idempotency_keys.delete().where(
            sa.or_(t.scope == user_id, sa.and_(t.body.is_not(None), named))
        )
    )
    return int(result.rowcount or 0)


class ForgetAnswers(Projection):
    """Follows ``PersonalDataErased`` in the log and drops the stored answers
    that concern the person (:func:`forget_answers`). It keeps no tables of
    its own: the answers are the gateway's idempotency store, in the same
    database. (A projection rather than an event handler: a gateway worker is
    an HTTP request.)"""

    name = "forget_answers"
    metadata = sa.MetaData()
    categories = ("user",)
    event_types = ("PersonalDataErased",)

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        dropped = forget_answers(conn, event.data["user_id"])
        log.info("stored answers forgotten", user_id=event.data["user_id"], dropped=dropped)


class PrivacyRoutes(RoutesBase):
    @endpoint(
        "GET",
        "/me/export",
        summary="A copy of everything the marketplace holds about you, as JSON",
        tags=("personal data",),
        response=identity_api.ExportResponse,
        reads=("profiles",),
    )
    def export_me(self, request: Request) -> dict[str, Any]:
        """Your profile and files, projects and alerts, proposals and
        invitations, contracts with their offers and history, conversations and
        messages, notifications, reviews and reputation, and payments: as the
        gateway's views hold them (what you see through the API, all at once)."""
        assert self.scope.principal is not None
        with self.profiles.connect() as conn:
            return export(conn, self.scope.principal.user_id)
