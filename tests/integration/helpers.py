"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyotp
from marshmallow import Schema, fields

from shared.eventstore import EventMetadata, NewEvent
from shared.schemas import ALL, registry

SOURCE = "testsrc"


class Authenticator:
    """An authenticator app: the code of a time step, never one step twice
    (identity refuses a code it took before, and older ones)."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def code(self) -> str:
        while True:
            current = self.totp.timecode(datetime.now(UTC))
            for step in (current, current + 1):  # identity takes one step of drift
                if step > self.last_step:
                    self.last_step = step
                    return str(self.totp.generate_otp(step))
            time.sleep(1)


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
