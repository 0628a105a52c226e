"""Messaging's published read side: conversations with unread counts, their
messages, and every user's notifications inbox."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.messaging.notifications import RULES, notifications_for
from shared.errors import Forbidden, NotFound
from shared.jsonready import json_ready
from shared.pagination import decode_cursor, encode_cursor
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent

metadata = sa.MetaData()

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("ref_id", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("buyer_read", sa.Integer, nullable=False),
    sa.Column("seller_read", sa.Integer, nullable=False),
    sa.Column("buyer_unread", sa.Integer, nullable=False),
    sa.Column("seller_unread", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_message_at", sa.DateTime(timezone=True)),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("sender_id", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("file_ids", sa.JSON, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)


class MessagingView(Projection):
    """Unread counts are kept per participant as messages and receipts arrive,
    so a list of conversations is one query."""

    name = "messaging"
    version = 1
    metadata = metadata
    categories = ("conversation", "user")
    event_types = ("ConversationStarted", "MessagePosted", "MessagesRead", "PersonalDataErased")

    # ``PersonalDataErased``: what the log reads as once the person's keys are
    # gone (their fields "[erased]"), so live processing equals a rebuild.

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        d = event.data
        if event.type == "PersonalDataErased":
            conn.execute(
                messages.update().where(messages.c.sender_id == d["user_id"]).values(text=ERASED)
            )
            return
        conversation_id = event.subject
        where = conversations.c.conversation_id == conversation_id
        if event.type == "ConversationStarted":
            conn.execute(
                conversations.insert().values(
                    **{k: d[k] for k in ("conversation_id", "kind", "ref_id", "project_id")},
                    buyer_id=d["buyer_id"],
                    seller_id=d["seller_id"],
                    last_seq=0,
                    buyer_read=0,
                    seller_read=0,
                    buyer_unread=0,
                    seller_unread=0,
                    started_at=event.recorded_at,
                )
            )
            return
        row = conn.execute(sa.select(conversations).where(where)).one()
        if event.type == "MessagePosted":
            conn.execute(
                messages.insert().values(
                    conversation_id=conversation_id,
                    seq=event.revision,
                    message_id=d["message_id"],
                    sender_id=d["sender_id"],
                    text=d["text"],
                    file_ids=d["file_ids"],
                    sent_at=event.recorded_at,
                )
            )
            unread = "seller_unread" if d["recipient_id"] == row.seller_id else "buyer_unread"
            conn.execute(
                conversations.update()
                .where(where)
                .values(
                    {
                        "last_seq": event.revision,
                        "last_message_at": event.recorded_at,
                        unread: conversations.c[unread] + 1,
                    }
                )
            )
        elif event.type == "MessagesRead":
            role = "buyer" if d["reader_id"] == row.buyer_id else "seller"
            if d["up_to"] <= getattr(row, f"{role}_read"):
                return  # an older receipt changes nothing
            still_unread = conn.execute(
                sa.select(sa.func.count())
                .select_from(messages)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.seq > d["up_to"],
                    messages.c.sender_id != d["reader_id"],
                )
            ).scalar_one()
            conn.execute(
                conversations.update()
                .where(where)
                .values({f"{role}_read": d["up_to"], f"{role}_unread": still_unread})
            )


def _conversation(row: Any, user_id: str) -> dict[str, Any]:
    role, other = ("buyer", "seller") if user_id == row.buyer_id else ("seller", "buyer")
    return json_ready(
        {
            "conversation_id": row.conversation_id,
            "kind": row.kind,
            "ref_id": row.ref_id,
            "project_id": row.project_id,
            "buyer_id": row.buyer_id,
            "seller_id": row.seller_id,
            "last_seq": row.last_seq,
            "unread": getattr(row, f"{role}_unread"),
            "read_by_you": getattr(row, f"{role}_read"),
            "read_by_other": getattr(row, f"{other}_read"),
            "last_message_at": row.last_message_at,
        }
    )


def invitation_conversation(
    conn: Connection, project_id: str, seller_id: str, missing_ok: bool = False
) -> str | None:
    """The id of the conversation an accepted invitation opened (NotFound, or
    None with ``missing_ok``, until this view has it)."""
    found: str | None = conn.execute(
        sa.select(conversations.c.conversation_id).where(
            conversations.c.kind == "invitation",
            conversations.c.project_id == project_id,
            conversations.c.seller_id == seller_id,
        )
    ).scalar()
    if found is None and not missing_ok:
        raise NotFound("no such conversation")
    return found


def contract_conversation(conn: Connection, contract_id: str) -> str | None:
    """The id of a contract's work-room conversation, if one was started."""
    found: str | None = conn.execute(
        sa.select(conversations.c.conversation_id).where(
            conversations.c.kind == "contract", conversations.c.ref_id == contract_id
        )
    ).scalar()
    return found


def get_conversation(conn: Connection, conversation_id: str, user_id: str) -> dict[str, Any]:
    row = conn.execute(
        sa.select(conversations).where(conversations.c.conversation_id == conversation_id)
    ).one_or_none()
    if row is None:
        raise NotFound("no such conversation")
    if user_id not in (row.buyer_id, row.seller_id):
        raise Forbidden("only the conversation's participants read it")
    return _conversation(row, user_id)


def list_conversations(conn: Connection, user_id: str) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(conversations)
        .where(sa.or_(conversations.c.buyer_id == user_id, conversations.c.seller_id == user_id))
        .order_by(
            sa.func.coalesce(conversations.c.last_message_at, conversations.c.started_at).desc()
        )
    ).all()
    items = [_conversation(r, user_id) for r in rows]
    return {"items": items, "total_unread": sum(i["unread"] for i in items)}


def list_messages(
    conn: Connection, conversation_id: str, order: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    after = decode_cursor(cursor)
    query = sa.select(messages).where(messages.c.conversation_id == conversation_id)
    newest_first = order == "desc"
    if after is not None:
        seq = int(after.get("seq", 0))
        query = query.where(messages.c.seq < seq if newest_first else messages.c.seq > seq)
    query = query.order_by(messages.c.seq.desc() if newest_first else messages.c.seq)
    rows = conn.execute(query.limit(limit + 1)).all()
    items = [
        json_ready(
            {
                "seq": r.seq,
                "message_id": r.message_id,
                "sender_id": r.sender_id,
                "text": r.text,
                "file_ids": r.file_ids,
                "sent_at": r.sent_at,
            }
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": encode_cursor({"seq": items[-1]["seq"]}) if more else None,
    }


# -- notifications -----------------------------------------------------------------------

notifications_metadata = sa.MetaData()

notifications = sa.Table(
    "notifications",
    notifications_metadata,
    sa.Column("notification_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("link_type", sa.String(20), nullable=False),
    sa.Column("link_id", sa.String(64)),
    sa.Column("milestone_id", sa.String(64)),
    sa.Column("read", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_notifications_user_position", "user_id", "position"),
)

refs = sa.Table(
    "notification_refs",
    notifications_metadata,
    sa.Column("ref_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False),
    sa.Column("seller_id", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=False),
)


class NotificationsView(Projection):
    """Every user's inbox, from the events of every service (see
    ``services.messaging.notifications``)."""

    name = "notifications"
    version = 1
    metadata = notifications_metadata
    event_types = (*RULES, "NotificationsRead")

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        d = event.data
        if event.type == "NotificationsRead":
            query = notifications.update().where(
                notifications.c.user_id == d["user_id"], notifications.c.read.is_(False)
            )
            if d["all"]:
                query = query.where(notifications.c.position <= d["up_to_position"])
            else:
                query = query.where(notifications.c.notification_id.in_(d["notification_ids"]))
            conn.execute(query.values(read=True))
            return
        ref = event.subject
        if event.type in ("ProposalSubmitted", "OfferSent"):
            conn.execute(
                refs.insert().values(
                    ref_id=ref,
                    buyer_id=d["buyer_id"],
                    seller_id=d["seller_id"],
                    project_id=d["project_id"],
                )
            )
        row = conn.execute(sa.select(refs).where(refs.c.ref_id == ref)).one_or_none()
        parties = dict(row._mapping) if row is not None else {}
        found = notifications_for(event, parties)
        if found:
            conn.execute(
                notifications.insert(),
                [
                    {**n, "position": event.position, "read": False, "at": event.recorded_at}
                    for n in found
                ],
            )


def _notification(r: Any) -> dict[str, Any]:
    return json_ready(
        {
            "notification_id": r.notification_id,
            "kind": r.kind,
            "title": r.title,
            "link": {"type": r.link_type, "id": r.link_id, "milestone_id": r.milestone_id},
            "read": r.read,
            "at": r.at,
            "position": r.position,
        }
    )


def list_notifications(
    conn: Connection, user_id: str, unread_only: bool, limit: int, cursor: str | None
) -> dict[str, Any]:
    after = decode_cursor(cursor)
    query = sa.select(notifications).where(notifications.c.user_id == user_id)
    if unread_only:
        query = query.where(notifications.c.read.is_(False))
    if after is not None:
        query = query.where(
            sa.tuple_(notifications.c.position, notifications.c.notification_id)
            < (int(after.get("p", 0)), str(after.get("id", "")))
        )
    rows = conn.execute(
        query.order_by(
            notifications.c.position.desc(), notifications.c.notification_id.desc()
        ).limit(limit + 1)
    ).all()
    items = [_notification(r) for r in rows[:limit]]
    unread = conn.execute(
        sa.select(sa.func.count())
        .select_from(notifications)
        .where(notifications.c.user_id == user_id, notifications.c.read.is_(False))
    ).scalar_one()
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return {
        "items": items,
        "unread": unread,
        "next_cursor": encode_cursor({"p": last.position, "id": last.notification_id})
        if last
        else None,
    }


def notifications_after(conn: Connection, user_id: str, position: int) -> list[dict[str, Any]]:
    """For live delivery: what arrived after ``position``, oldest first."""
    rows = conn.execute(
        sa.select(notifications)
        .where(notifications.c.user_id == user_id, notifications.c.position > position)
        .order_by(notifications.c.position, notifications.c.notification_id)
        .limit(100)
    ).all()
    return [_notification(r) for r in rows]


def latest_position(conn: Connection, user_id: str) -> int:
    value = conn.execute(
        sa.select(sa.func.max(notifications.c.position)).where(notifications.c.user_id == user_id)
    ).scalar_one()
    return int(value or 0)
