"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from shared.eventstore import EventMetadata, NewEvent
from shared.schemas import ALL, registry

SOURCE = "testsrc"


@registry.event("ThingHappened", version=1, published=ALL)
class ThingHappenedV1(Schema):
    thing_id = fields.String(required=True)
    amount = fields.Integer(required=True)


@registry.event("ThingFollowedUp", version=1, published=ALL)
class ThingFollowedUpV1(Schema):
    thing_id = fields.String(required=True)


def thing(amount: int = 1, thing_id: str | None = None, **meta: Any) -> NewEvent:
    metadata = EventMetadata(
        correlation_id=meta.get("correlation_id", str(uuid.uuid4())),
        causation_id=meta.get("causation_id", "test"),
        actor_id=meta.get("actor_id", "user-test"),
        source=meta.get("source", SOURCE),
    )
    return NewEvent(
        "ThingHappened", {"thing_id": thing_id or uuid.uuid4().hex, "amount": amount}, metadata
    )


def wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
