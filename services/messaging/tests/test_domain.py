"""Conversations and notifications, with no broker, database or clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.messaging import domain as D
from services.messaging.domain import Conversation
from services.messaging.notifications import notifications_for
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent

PARTIES = {"buyer_id": "b", "seller_id": "s", "project_id": "p"}


def event(event_type: str, data: dict, stream: str) -> DecodedEvent:
    recorded = RecordedEvent(
        uuid.uuid4(), event_type, 1, data, EventMetadata.root("x"), stream, 0, 7, datetime.now(UTC)
    )
    return DecodedEvent(recorded, data, 1)


def started() -> Conversation:
    (spec,) = D.start(Conversation(), "proposal", "r1", PARTIES, "s")
    return D.evolve(Conversation(), event(*spec, "conversation-x"))


def test_only_the_two_parties_start_post_and_read():
    with pytest.raises(Forbidden):
        D.start(Conversation(), "proposal", "r1", PARTIES, "stranger")
    state = started()
    assert state.conversation_id == D.conversation_id_for("proposal", "r1")
    assert D.start(state, "proposal", "r1", PARTIES, "b") == []  # already started
    (posted,) = D.post(state, "b", "m1", "hello", [])
    assert posted[1]["recipient_id"] == "s"
    with pytest.raises(Forbidden):
        D.post(state, "stranger", "m2", "hi", [])
    with pytest.raises(InvalidInput):
        D.post(state, "b", "m3", "  ", [])
    with pytest.raises(Conflict):
        D.mark_read(state, "s", 5, last=2)
    assert D.mark_read(state, "s", 2, last=2)[0][1] == {"reader_id": "s", "up_to": 2}


def test_notifications_go_to_the_right_party_once_per_event():
    approved = event(
        "MilestoneApproved",
        {"milestone_id": "m", "automatic": False, "amount": 1, "currency": "USD", "seller_id": "s"},
        "contract-c1",
    )
    (n,) = notifications_for(approved, PARTIES)
    assert (n["user_id"], n["kind"], n["link_type"], n["link_id"]) == (
        "s",
        "approved",
        "contract",
        "c1",
    )
    assert notifications_for(approved, PARTIES)[0]["notification_id"] == n["notification_id"]
    auto = event("MilestoneApproved", {**approved.data, "automatic": True}, "contract-c1")
    assert sorted(x["user_id"] for x in notifications_for(auto, PARTIES)) == ["b", "s"]
    dispute = event(
        "MilestoneDisputed", {"milestone_id": "m", "opened_by": "b", "reason": "x"}, "contract-c1"
    )
    assert [x["user_id"] for x in notifications_for(dispute, PARTIES)] == ["s"]
    assert notifications_for(event("ProposalEdited", {}, "proposal-p1"), PARTIES) == []


def test_progress_and_reminders_notify_the_party_who_must_act():
    progress = event("ProgressReported", {"milestone_id": "m", "note": "half"}, "contract-c1")
    assert [(x["user_id"], x["kind"]) for x in notifications_for(progress, PARTIES)] == [
        ("b", "progress_reported")
    ]
    reminder = {"milestone_id": "m", "due_date": "2026-12-07", "buyer_id": "b", "seller_id": "s"}
    soon = event("MilestoneDueSoon", reminder, "contract-c1")
    assert [x["user_id"] for x in notifications_for(soon, {})] == ["s"]
    late = event("MilestoneOverdue", reminder, "contract-c1")
    assert sorted(x["user_id"] for x in notifications_for(late, {})) == ["b", "s"]
    approval = {
        "milestone_id": "m",
        "submission": 1,
        "approves_at": "2026-12-09T09:00:00+00:00",
        "hours": 47,
        "buyer_id": "b",
        "seller_id": "s",
    }
    (n,) = notifications_for(event("ApprovalDueSoon", approval, "contract-c1"), PARTIES)
    assert n["user_id"] == "b" and n["link_id"] == "c1" and n["milestone_id"] == "m"
    assert n["title"] == (
        "Approve or request changes within 47 hours or it will be approved automatically"
    )
