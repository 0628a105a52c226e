from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from marshmallow import Schema, fields

from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import EventRegistry, InvalidEventPayload, SchemaError, UnknownEventType


@pytest.fixture
def registry() -> EventRegistry:
    reg = EventRegistry()

    @reg.event("BudgetSet", version=1)
    class BudgetSetV1(Schema):
        amount = fields.Integer(required=True)

    @reg.event(
        "BudgetSet",
        version=2,
        upcast=lambda d: {"amount": {"minor": d["amount"], "currency": "USD"}},
    )
    class BudgetSetV2(Schema):
        amount = fields.Dict(required=True)
        due = fields.DateTime(load_default=None)

    return reg


def recorded(event_type: str, version: int, data: dict) -> RecordedEvent:
    return RecordedEvent(
        event_id=uuid.uuid4(),
        type=event_type,
        schema_version=version,
        data=data,
        metadata=EventMetadata.root("u"),
        stream="project-1",
        revision=0,
        position=1,
        recorded_at=datetime.now(UTC),
    )


def test_encode_uses_current_version_and_validates(registry: EventRegistry):
    version, data = registry.encode(
        "BudgetSet", {"amount": {"minor": 5, "currency": "EUR"}, "due": datetime(2027, 1, 2)}
    )
    assert version == 2
    assert data == {"amount": {"minor": 5, "currency": "EUR"}, "due": "2027-01-02T00:00:00"}
    with pytest.raises(InvalidEventPayload) as caught:
        registry.encode("BudgetSet", {"due": datetime(2027, 1, 2)})
    assert "amount" in caught.value.errors
    with pytest.raises(InvalidEventPayload):
        registry.encode("BudgetSet", {"amount": {}, "due": "not a datetime object"})


def test_old_versions_are_upcast_on_read(registry: EventRegistry):
    decoded = registry.decode(recorded("BudgetSet", 1, {"amount": 700}))
    assert decoded.version == 2
    assert decoded.data == {"amount": {"minor": 700, "currency": "USD"}, "due": None}
    envelope = registry.envelope(recorded("BudgetSet", 1, {"amount": 700}))
    assert envelope["schema_version"] == 2
    assert envelope["data"] == {"amount": {"minor": 700, "currency": "USD"}}


def test_unknown_type_or_version_is_a_clear_error(registry: EventRegistry):
    with pytest.raises(UnknownEventType, match="Nope"):
        registry.decode(recorded("Nope", 1, {}))
    with pytest.raises(UnknownEventType, match="version 3"):
        registry.decode(recorded("BudgetSet", 3, {}))


def test_invalid_stored_payload_is_not_dropped(registry: EventRegistry):
    with pytest.raises(InvalidEventPayload):
        registry.decode(recorded("BudgetSet", 2, {"amount": "lots"}))


def test_a_new_version_must_say_how_to_upcast(registry: EventRegistry):
    with pytest.raises(SchemaError, match="upcaster"):

        @registry.event("BudgetSet", version=3)
        class BudgetSetV3(Schema):
            pass
