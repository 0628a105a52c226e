"""MessagingService's entrypoints on the embedded event store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.messaging.service import MessagingService
from shared.errors import Forbidden, Unavailable
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(MessagingService, tmp_path)


def submitted_proposal(h: ServiceHarness) -> str:
    """A proposal as bidding's events tell it (the one place this test sets up
    another service's entity)."""
    proposal_id = str(uuid.uuid4())
    submitted = {
        "proposal_id": proposal_id,
        "project_id": str(uuid.uuid4()),
        "buyer_id": BUYER,
        "seller_id": SELLER,
        "project_version": 1,
        "cover_letter": "I have built many landing pages like this one.",
        "price": {"type": "fixed", "amount": 200_000, "currency": "USD"},
        "duration_days": 10,
    }
    h.append(f"proposal-{proposal_id}", [("ProposalSubmitted", submitted)], actor=SELLER)
    return proposal_id


def test_a_proposal_has_one_conversation_between_its_parties(h: ServiceHarness) -> None:
    proposal_id = submitted_proposal(h)
    started = h.worker(SELLER).start_conversation({"proposal_id": proposal_id})
    assert h.worker(BUYER).start_conversation({"proposal_id": proposal_id}) == started
    assert h.types(f"conversation-{started['conversation_id']}") == ["ConversationStarted"]
    with pytest.raises(Forbidden):
        h.worker(str(uuid.uuid4())).start_conversation({"proposal_id": proposal_id})
    with pytest.raises(Unavailable):  # messaging has not heard of it (yet): 503, retry
        h.worker(SELLER).start_conversation({"proposal_id": str(uuid.uuid4())})


def test_messages_are_numbered_by_their_place_in_the_conversation(h: ServiceHarness) -> None:
    proposal_id = submitted_proposal(h)
    conversation_id = h.worker(SELLER).start_conversation({"proposal_id": proposal_id})[
        "conversation_id"
    ]
    first = h.worker(SELLER).post_message(conversation_id, {"text": "Hello"})
    second = h.worker(BUYER).post_message(conversation_id, {"text": "Hi"})
    assert (first["seq"], second["seq"]) == (1, 2)
    assert h.worker(BUYER).mark_read(conversation_id, 2) == {"marked": True}
    with pytest.raises(Forbidden):
        h.worker(str(uuid.uuid4())).post_message(conversation_id, {"text": "spam"})
