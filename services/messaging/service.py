"""The messaging service: conversations between a buyer and a seller, read
receipts, and marking notifications read. (The inbox itself is a view of
every service's events: ``services.messaging.views.NotificationsView``.)"""

from __future__ import annotations

from typing import Any

from services.messaging import api, domain
from services.messaging.domain import Conversation
from shared.attachments import FILE_FACTS, check_own_files
from shared.consumer import decode_message, event_handler, learns
from shared.erasure import forget_person
from shared.errors import NotFound
from shared.eventlog import Aggregate
from shared.eventstore import StreamNotFound, StreamState
from shared.facts import LearnedFacts
from shared.logging import get_logger
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)

CONVERSATION = Aggregate(
    "conversation", domain.conversation_stream, domain.evolve, Conversation, lambda c: c.exists
)


class MessagingService(MarketplaceService):
    name = "messaging"
    facts = LearnedFacts()

    @learns("bidding", "ProposalSubmitted")
    def learn_proposal(self, payloads: list[dict[str, Any]]) -> None:
        """Who may talk about a proposal, or a contract: its buyer and seller."""
        self.facts.learn_all(payloads)

    @learns("contracts", "OfferSent")
    def learn_contract(self, payloads: list[dict[str, Any]]) -> None:
        self.facts.learn_all(payloads)

    @learns("identity", *FILE_FACTS)
    def learn_file(self, payloads: list[dict[str, Any]]) -> None:
        self.facts.learn_all(payloads)

    def _conversation(self, conversation_id: str) -> tuple[Conversation, int]:
        """The conversation (from its first event only) and its last revision."""
        stream = domain.conversation_stream(known_id(conversation_id, "conversation"))
        try:
            first = self.event_log.store.read_stream(stream, limit=1)
        except StreamNotFound:
            raise NotFound("no such conversation") from None
        state = domain.evolve(Conversation(), self.event_log.schemas.decode(first[0]))
        return state, self.event_log.store.stream_revision(stream) or 0

    @event_handler("bidding", "InvitationAccepted")
    def on_invitation_accepted(self, payload: dict[str, Any]) -> None:
        """An accepted invitation opens a conversation about it (once), so the
        buyer and the seller can talk before any proposal."""
        parties = decode_message(payload).data
        ref_id = domain.invitation_ref(parties["project_id"], parties["seller_id"])
        conversation_id = domain.conversation_id_for("invitation", ref_id)
        self.event_log.run(
            CONVERSATION,
            conversation_id,
            lambda s: domain.start(s, "invitation", ref_id, parties, parties["seller_id"]),
        )

    @rpc
    def start_conversation(self, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.StartConversationRequest(), request)
        kind = "proposal" if data["proposal_id"] else "contract"
        ref_id = str(data["proposal_id"] or data["contract_id"])
        source = "bidding" if kind == "proposal" else "contracts"
        parties = self.facts.require(source, ref_id, domain.evolve_parties, {}, bool, kind)
        conversation_id = domain.conversation_id_for(kind, ref_id)
        actor = self.context.actor_id
        state = self.event_log.run(
            CONVERSATION, conversation_id, lambda s: domain.start(s, kind, ref_id, parties, actor)
        )
        return {"conversation_id": state.conversation_id, "kind": kind, "ref_id": ref_id}

    @rpc
    def post_message(self, conversation_id: str, request: dict[str, Any]) -> dict[str, Any]:
        data = load(api.PostMessageRequest(), request)
        state, _ = self._conversation(conversation_id)
        actor = self.context.actor_id
        domain.require_participant(state, actor)
        files = check_own_files(self.facts, actor, data["file_ids"], "message")
        message_id = self.event_log.new_id("message")
        events = domain.post(state, actor, message_id, data["text"], files)
        # Not event_log.run: messages only append (at any revision), and each
        # one's number is its revision; folding the whole stream is not needed.
        result = self.event_log.record(
            domain.conversation_stream(conversation_id), events, StreamState.STREAM_EXISTS
        )
        return {"message_id": message_id, "seq": result.last_revision}

    @rpc
    def mark_read(self, conversation_id: str, up_to: int) -> dict[str, Any]:
        load(api.ReadRequest(), {"up_to": up_to})
        state, last = self._conversation(conversation_id)
        events = domain.mark_read(state, self.context.actor_id, up_to, last)
        self.event_log.record(
            domain.conversation_stream(conversation_id), events, StreamState.STREAM_EXISTS
        )
        return {"marked": True}

    @rpc
    def mark_notifications_read(
        self, request: dict[str, Any], up_to_position: int | None = None
    ) -> dict[str, Any]:
        """``up_to_position``: with ``all``, the newest notification the reader saw."""
        data = load(api.MarkNotificationsRequest(), request)
        user = self.context.actor_id
        if not data["all"] and not data["notification_ids"]:
            return {"marked": False}
        self.event_log.record(
            f"inbox-{user}",
            [
                (
                    "NotificationsRead",
                    {
                        "user_id": user,
                        "notification_ids": [str(n) for n in data["notification_ids"]],
                        "all": data["all"],
                        "up_to_position": up_to_position if data["all"] else None,
                    },
                )
            ],
        )
        return {"marked": True}

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of them."""
        forget_person(payload, self.event_log, self.facts)
