"""Conversations' rules, as pure functions.

A conversation belongs to a proposal or a contract and has exactly two
participants, its buyer and its seller; only they read or write it. Its id is
derived from what it is about, so both parties starting it at once start the
same conversation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]


def conversation_id_for(kind: str, ref_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"conversation:{kind}:{ref_id}"))


def invitation_ref(project_id: str, seller_id: str) -> str:
    """The id an invitation's conversation refers to (bidding names an
    invitation by its project and seller)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"invitation:{project_id}:{seller_id}"))


def conversation_stream(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


@dataclass(frozen=True)
class Conversation:
    conversation_id: str = ""
    kind: str = ""
    ref_id: str = ""
    project_id: str = ""
    buyer_id: str = ""
    seller_id: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.conversation_id)

    def other(self, user_id: str) -> str:
        return self.seller_id if user_id == self.buyer_id else self.buyer_id


def evolve(state: Conversation, event: EventView) -> Conversation:
    if event.type == "ConversationStarted":
        d = event.data
        return Conversation(
            d["conversation_id"],
            d["kind"],
            d["ref_id"],
            d["project_id"],
            d["buyer_id"],
            d["seller_id"],
        )
    return state


def start(
    state: Conversation, kind: str, ref_id: str, parties: dict[str, str], actor: str
) -> list[EventSpec]:
    """``parties``: the proposal's or contract's buyer, seller and project."""
    if actor not in (parties["buyer_id"], parties["seller_id"]):
        raise Forbidden("only its buyer and seller talk about this")
    if state.exists:
        return []
    return [
        (
            "ConversationStarted",
            {
                "conversation_id": conversation_id_for(kind, ref_id),
                "kind": kind,
                "ref_id": ref_id,
                "project_id": parties["project_id"],
                "buyer_id": parties["buyer_id"],
                "seller_id": parties["seller_id"],
            },
        )
    ]


def require_participant(state: Conversation, actor: str) -> None:
    if not state.exists:
        raise NotFound("no such conversation")
    if actor not in (state.buyer_id, state.seller_id):
        raise Forbidden("only the conversation's participants read or write it")


def post(
    state: Conversation, actor: str, message_id: str, text: str, file_ids: list[str]
) -> list[EventSpec]:
    require_participant(state, actor)
    if not text.strip() and not file_ids:
        raise InvalidInput("write something or attach a file", {"fields": {"text": ["Empty."]}})
    return [
        (
            "MessagePosted",
            {
                "message_id": message_id,
                "sender_id": actor,
                "recipient_id": state.other(actor),
                "text": text,
                "file_ids": file_ids,
            },
        )
    ]


def mark_read(state: Conversation, actor: str, up_to: int, last: int) -> list[EventSpec]:
    """``last``: the stream's last revision (no receipt beyond what exists)."""
    require_participant(state, actor)
    if up_to < 1 or up_to > last:
        raise Conflict(
            "there is no such message to have read", {"reason": "no_such_message", "last": last}
        )
    return [("MessagesRead", {"reader_id": actor, "up_to": up_to})]


# -- what messaging learns from bidding's and contracts' events ---------------------------


def evolve_parties(state: dict[str, str], event: EventView) -> dict[str, str]:
    """A proposal's or contract's buyer, seller and project, from its first event."""
    if event.type in ("ProposalSubmitted", "OfferSent"):
        d = event.data
        return {
            "buyer_id": d["buyer_id"],
            "seller_id": d["seller_id"],
            "project_id": d["project_id"],
        }
    return state
