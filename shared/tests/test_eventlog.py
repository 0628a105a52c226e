"""ServiceEventLog: recording with metadata and deciding again when a stream moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import Schema, fields

from shared.context import Context
from shared.errors import StaleState
from shared.eventlog import ServiceEventLog
from shared.eventstore import StreamState
from shared.eventstore.sql import SqlEventStore
from shared.schemas import EventRegistry

schemas = EventRegistry()


@schemas.event("Counted")
class Counted(Schema):
    n = fields.Integer(required=True)


def count(state: int, event) -> int:
    return event.data["n"]


@pytest.fixture
def log(tmp_path: Path) -> ServiceEventLog:
    store = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    return ServiceEventLog(store, Context("corr-1", "cause-1", "user-1", "counter"), schemas)


def test_record_validates_and_stamps_the_requests_metadata(log: ServiceEventLog):
    log.record("counter-1", [("Counted", {"n": 1})], StreamState.NO_STREAM)
    (event,) = log.store.read_stream("counter-1")
    assert (event.metadata.correlation_id, event.metadata.actor_id) == ("corr-1", "user-1")
    assert event.metadata.source == "counter"
    with pytest.raises(StaleState) as caught:
        log.record("counter-1", [("Counted", {"n": 2})], StreamState.NO_STREAM)
    assert caught.value.status == 409


def test_execute_decides_again_on_fresh_state_after_another_writer(log: ServiceEventLog):
    log.record("counter-1", [("Counted", {"n": 1})])
    seen: list[int] = []

    def increment(state: int) -> list[tuple[str, dict]]:
        seen.append(state)
        if len(seen) == 1:  # another writer gets in between our read and our append
            log.record("counter-1", [("Counted", {"n": 10})])
        return [("Counted", {"n": state + 1})]

    state, result = log.execute("counter-1", count, 0, increment)
    assert seen == [1, 10]
    assert state == 10 and result is not None
    assert [e.data["n"] for e in log.store.read_stream("counter-1")] == [1, 10, 11]


def test_execute_gives_up_with_a_conflict_when_the_stream_keeps_moving(log: ServiceEventLog):
    def always_interfered(state: int) -> list[tuple[str, dict]]:
        log.record("counter-2", [("Counted", {"n": state + 100})])
        return [("Counted", {"n": state + 1})]

    with pytest.raises(StaleState):
        log.execute("counter-2", count, 0, always_interfered, attempts=3)


def test_command_returns_the_state_after_its_own_events(log: ServiceEventLog):
    log.record("counter-3", [("Counted", {"n": 4})])
    after = log.command("counter-3", count, 0, lambda state: [("Counted", {"n": state + 1})])
    assert after == 5
    unchanged = log.command("counter-3", count, 0, lambda state: [])
    assert unchanged == 5


def test_a_retried_request_recognises_what_its_first_attempt_recorded(tmp_path: Path):
    """The same Idempotency-Key: the same entity ids, and a command that its
    first attempt already recorded returns the state instead of deciding again."""
    store = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")

    def attempt() -> tuple[str, int]:
        context = Context("corr", "cause", "user-1", "counter", request_key="user-1:key-1")
        log = ServiceEventLog(store, context, schemas)
        entity = log.new_id("counter")

        def increment(state: int) -> list[tuple[str, dict]]:
            if state >= 1:
                raise StaleState("would refuse a second increment")
            return [("Counted", {"n": state + 1})]

        return entity, log.command(f"counter-{entity}", count, 0, increment)

    first, second = attempt(), attempt()
    assert first == second
    assert len(store.read_stream(f"counter-{first[0]}")) == 1
    other = ServiceEventLog(store, Context("c", "c", "user-1", "counter"), schemas)
    assert other.new_id("counter") != first[0]  # without a key: a new id each time
