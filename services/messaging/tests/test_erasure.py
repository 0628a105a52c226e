"""An erased sender's messages, as the gateway's view holds them: scrubbed live
exactly as a rebuild reads them from the log once the keys are gone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from services.messaging import views
from shared.eventstore import EventMetadata, NewEvent
from shared.eventstore.sql import SqlEventStore
from shared.personal import ERASED, MemoryKeyring, PersonalDataStore
from shared.projection import ProjectionRunner
from shared.schemas import load_all_event_schemas, registry
from shared.sql import create_sql_engine

BUYER, SELLER = "b0000000-0000-0000-0000-000000000001", "s0000000-0000-0000-0000-000000000002"


def event(source: str, actor: str, event_type: str, data: dict) -> NewEvent:
    version, encoded = registry.encode(event_type, data)
    return NewEvent(event_type, encoded, EventMetadata.root(actor, source), version)


def rows(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(views.messages).order_by("seq"))]


def test_a_scrubbed_view_equals_its_rebuild(tmp_path: Path) -> None:
    load_all_event_schemas()
    keyring = MemoryKeyring()
    store = PersonalDataStore(SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}"), keyring)
    started = {
        "conversation_id": "c1",
        "kind": "proposal",
        "ref_id": "p1",
        "project_id": "pr1",
        "buyer_id": BUYER,
        "seller_id": SELLER,
    }
    store.append(
        "conversation-c1",
        [
            event("messaging", BUYER, "ConversationStarted", started),
            *(
                event(
                    "messaging",
                    sender,
                    "MessagePosted",
                    {"message_id": f"m{i}", "sender_id": sender, "recipient_id": other, "text": t},
                )
                for i, (sender, other, t) in enumerate(
                    [(BUYER, SELLER, "hello"), (SELLER, BUYER, "hi"), (BUYER, SELLER, "bye")]
                )
            ),
        ],
    )
    live = create_sql_engine(f"sqlite:///{tmp_path / 'live.sqlite'}")
    runner = ProjectionRunner(views.MessagingView(), store, live)
    runner.prepare()
    runner.catch_up()
    assert [row[4] for row in rows(live)] == ["hello", "hi", "bye"]

    # identity erases the buyer; messaging deletes its key when it hears of it
    store.append(
        f"user-{BUYER}",
        [event("identity", BUYER, "PersonalDataErased", {"user_id": BUYER, "erased_by": BUYER})],
    )
    runner.catch_up()
    assert [row[4] for row in rows(live)] == [ERASED, "hi", ERASED]
    keyring.erase("messaging", BUYER)

    rebuilt = create_sql_engine(f"sqlite:///{tmp_path / 'rebuilt.sqlite'}")
    again = ProjectionRunner(views.MessagingView(), store, rebuilt)
    again.rebuild()
    assert rows(rebuilt) == rows(live)
