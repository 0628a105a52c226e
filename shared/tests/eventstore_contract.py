"""The event store contract, as tests every backend must pass unchanged.

Subclasses provide two fixtures: ``store`` (an empty store) and
``commit_jitter`` (a context manager that makes commits slow at random,
so that concurrent transactions finish in a different order than they began).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pytest

from shared.eventstore import (
    EventMetadata,
    EventStore,
    InvalidAppend,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamNotFound,
    StreamState,
    WrongExpectedRevision,
)

META = EventMetadata(
    correlation_id="corr-1", causation_id="cause-1", actor_id="user-1", source="tests"
)


def new(event_type: str = "Happened", **data: Any) -> NewEvent:
    return NewEvent(type=event_type, data=data, metadata=META)


def stream_name(category: str = "order") -> str:
    return f"{category}-{uuid.uuid4().hex[:10]}"


class EventStoreContract:
    # Each test takes the subclass's ``store`` fixture (an EventStore); no
    # ``store`` attribute here, which a type checker would hold the fixtures to.

    # -- appending and optimistic concurrency --------------------------------

    def test_append_to_new_stream_numbers_revisions_from_zero(self, store: EventStore):
        s = stream_name()
        result = store.append(s, [new(n=1), new(n=2), new(n=3)], StreamState.NO_STREAM)
        assert (result.first_revision, result.last_revision) == (0, 2)
        events = store.read_stream(s)
        assert [e.revision for e in events] == [0, 1, 2]
        assert [e.data["n"] for e in events] == [1, 2, 3]
        assert result.position == events[-1].position
        assert store.stream_revision(s) == 2

    def test_append_with_exact_expected_revision(self, store: EventStore):
        s = stream_name()
        store.append(s, [new()], StreamState.NO_STREAM)
        result = store.append(s, [new(), new()], 0)
        assert (result.first_revision, result.last_revision) == (1, 2)

    def test_wrong_exact_revision_names_both_numbers(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(), new()], StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedRevision) as caught:
            store.append(s, [new()], 0)
        assert (caught.value.expected, caught.value.actual) == (0, 1)
        assert "expected 0" in str(caught.value) and "actual 1" in str(caught.value)
        assert len(store.read_stream(s)) == 2

    def test_no_stream_expectation_on_existing_stream_fails(self, store: EventStore):
        s = stream_name()
        store.append(s, [new()], StreamState.ANY)
        with pytest.raises(WrongExpectedRevision) as caught:
            store.append(s, [new()], StreamState.NO_STREAM)
        assert caught.value.actual == 0

    def test_stream_exists_expectation_on_missing_stream_fails(self, store: EventStore):
        s = stream_name()
        with pytest.raises(WrongExpectedRevision) as caught:
            store.append(s, [new()], StreamState.STREAM_EXISTS)
        assert caught.value.actual is None
        assert store.stream_revision(s) is None
        store.append(s, [new()], StreamState.ANY)
        assert store.append(s, [new()], StreamState.STREAM_EXISTS).last_revision == 1

    def test_reappending_same_event_ids_is_idempotent(self, store: EventStore):
        s = stream_name()
        batch = [new(n=1), new(n=2)]
        first = store.append(s, batch, StreamState.NO_STREAM)
        again_exact = store.append(s, batch, StreamState.NO_STREAM)
        again_any = store.append(s, batch, StreamState.ANY)
        assert again_exact == first
        assert again_any == first
        assert len(store.read_stream(s)) == 2
        assert len([e for e in store.read_all() if e.stream == s]) == 2

    def test_partly_reappended_batch_is_rejected(self, store: EventStore):
        s = stream_name()
        e1 = new()
        store.append(s, [e1], StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedRevision):
            store.append(s, [e1, new()], StreamState.NO_STREAM)
        assert len(store.read_stream(s)) == 1

    @pytest.mark.parametrize(
        ("stream", "events", "expected"),
        [
            ("order-1", [], StreamState.ANY),
            ("", [new()], StreamState.ANY),
            ("$system", [new()], StreamState.ANY),
            ("order-1", [new()], -3),
        ],
    )
    def test_malformed_appends_are_rejected(self, store: EventStore, stream, events, expected):
        with pytest.raises(InvalidAppend):
            store.append(stream, events, expected)

    def test_duplicate_ids_within_one_append_are_rejected(self, store: EventStore):
        event = new()
        with pytest.raises(InvalidAppend):
            store.append(stream_name(), [event, event])

    def test_concurrent_appends_at_same_revision_exactly_one_wins(self, store: EventStore):
        s = stream_name()
        store.append(s, [new()], StreamState.NO_STREAM)
        outcomes: list[str] = []

        def attempt() -> None:
            try:
                store.append(s, [new()], 0)
                outcomes.append("ok")
            except WrongExpectedRevision:
                outcomes.append("conflict")

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["ok"]
        assert store.stream_revision(s) == 1

    # -- what is recorded ----------------------------------------------------

    def test_envelope_round_trips(self, store: EventStore):
        s = stream_name()
        event = NewEvent(
            type="ThingRenamed",
            data={"name": "Zoë's ☕", "nested": {"list": [1, 2.5, None, True]}, "amount": 10_00},
            metadata=EventMetadata("corr-9", "cause-9", "user-9", "svc", {"ip": "10.0.0.1"}),
            schema_version=3,
        )
        store.append(s, [event])
        (got,) = store.read_stream(s)
        assert got.event_id == event.event_id
        assert got.type == "ThingRenamed"
        assert got.schema_version == 3
        assert got.data == event.data
        assert got.metadata == event.metadata
        assert got.stream == s and got.category == s.split("-")[0]
        assert isinstance(got.recorded_at, datetime) and got.recorded_at.tzinfo is not None

    # -- reading -------------------------------------------------------------

    def test_read_stream_forwards_backwards_from_revision_with_limit(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(n=i) for i in range(10)])
        assert [e.revision for e in store.read_stream(s, from_revision=7)] == [7, 8, 9]
        assert [e.revision for e in store.read_stream(s, backwards=True, limit=3)] == [9, 8, 7]
        backwards = store.read_stream(s, from_revision=2, backwards=True)
        assert [e.revision for e in backwards] == [2, 1, 0]
        assert [e.revision for e in store.read_stream(s, from_revision=3, limit=2)] == [3, 4]

    def test_reading_a_missing_stream_raises(self, store: EventStore):
        with pytest.raises(StreamNotFound):
            store.read_stream(stream_name())

    def test_read_all_is_in_global_order_with_inclusive_start(self, store: EventStore):
        streams = [stream_name("alpha"), stream_name("beta")]
        appended = []
        for i in range(6):
            s = streams[i % 2]
            event = new(n=i)
            store.append(s, [event])
            appended.append(event.event_id)
        everything = [e for e in store.read_all() if e.stream in streams]
        assert [e.event_id for e in everything] == appended
        positions = [e.position for e in everything]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        third = everything[2].position
        from_third = [
            e.event_id for e in store.read_all(from_position=third) if e.stream in streams
        ]
        assert from_third == appended[2:]
        backwards = [e.event_id for e in store.read_all(backwards=True) if e.stream in streams]
        assert backwards == appended[::-1]
        assert store.last_position() >= positions[-1]

    def test_read_all_limit_and_filters(self, store: EventStore):
        a, b = stream_name("alpha"), stream_name("beta")
        store.append(a, [new("Opened"), new("Closed")])
        store.append(b, [new("Opened"), new("Other")])
        assert {e.stream for e in store.read_all(categories=["alpha"])} == {a}
        opened = list(store.read_all(event_types=["Opened"]))
        assert {e.stream for e in opened} == {a, b}
        assert all(e.type == "Opened" for e in opened)
        assert len(list(store.read_all(limit=3))) == 3

    # -- subscriptions -------------------------------------------------------

    def test_subscription_catches_up_then_goes_live_excluding_checkpoint(self, store: EventStore):
        s = stream_name("sub")
        store.append(s, [new(n=i) for i in range(3)])
        history = list(store.read_all(categories=["sub"]))
        checkpoint = history[0].position
        with store.subscribe(checkpoint=checkpoint, categories=["sub"]) as sub:
            caught_up = _collect(sub, 2)
            assert [e.data["n"] for e in caught_up] == [1, 2]
            live = new(n=3)
            store.append(s, [live])
            (got,) = _collect(sub, 1)
            assert got.event_id == live.event_id
            assert sub.next_batch(timeout=0.2) == []

    def test_subscription_from_start_filters_by_type(self, store: EventStore):
        s = stream_name("subt")
        store.append(s, [new("Wanted", n=1), new("Unwanted"), new("Wanted", n=2)])
        with store.subscribe(event_types=["Wanted"]) as sub:
            got = _collect(sub, 2)
        assert [e.data["n"] for e in got] == [1, 2]

    def test_sixteen_concurrent_writers_while_a_subscription_tails(
        self, store: EventStore, commit_jitter: AbstractContextManager[None]
    ):
        """No event missed, none twice, none out of order, even when commits
        finish in another order than positions were handed out."""
        writers, appends_each = 16, 12
        appended: dict[uuid.UUID, str] = {}
        lock = threading.Lock()
        received: list[RecordedEvent] = []
        done_writing = threading.Event()
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            rng = random.Random(worker)
            s = f"conc-{worker}-{uuid.uuid4().hex[:6]}"
            try:
                for i in range(appends_each):
                    batch = [new(w=worker, i=i, k=k) for k in range(rng.choice((1, 1, 2, 3)))]
                    store.append(s, batch, StreamState.ANY)
                    with lock:
                        appended.update((e.event_id, s) for e in batch)
                    time.sleep(rng.random() * 0.01)
            except BaseException as exc:
                errors.append(exc)

        with store.subscribe(categories=["conc"]) as sub:

            def tail() -> None:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    received.extend(sub.next_batch(timeout=0.2))
                    if done_writing.is_set() and len(received) >= len(appended):
                        return

            tailer = threading.Thread(target=tail)
            tailer.start()
            with commit_jitter:
                threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            done_writing.set()
            tailer.join()

        assert not errors, errors
        ids = [e.event_id for e in received]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert set(ids) == set(appended), "an event was missed"
        positions = [e.position for e in received]
        assert positions == sorted(positions), "events arrived out of global order"
        per_stream: dict[str, list[int]] = {}
        for e in received:
            per_stream.setdefault(e.stream, []).append(e.revision)
        for revisions in per_stream.values():
            assert revisions == list(range(len(revisions)))

    # -- stream metadata and deletion ---------------------------------------

    def test_max_count_keeps_only_the_newest_events(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(n=i) for i in range(5)])
        store.set_stream_metadata(s, StreamMetadata(max_count=2))
        assert store.get_stream_metadata(s).max_count == 2
        assert [e.data["n"] for e in store.read_stream(s)] == [3, 4]

    def test_truncate_before_hides_older_events(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(n=i) for i in range(5)])
        store.set_stream_metadata(s, StreamMetadata(truncate_before=3))
        assert store.get_stream_metadata(s) == StreamMetadata(truncate_before=3)
        assert [e.revision for e in store.read_stream(s)] == [3, 4]

    def test_max_age_hides_expired_events(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(n=0)])
        store.set_stream_metadata(s, StreamMetadata(max_age_seconds=1))
        assert len(store.read_stream(s)) == 1
        time.sleep(1.3)
        assert store.read_stream(s) == []

    def test_soft_delete_hides_stream_and_recreation_continues_revisions(self, store: EventStore):
        s = stream_name()
        store.append(s, [new(n=0), new(n=1)])
        with pytest.raises(WrongExpectedRevision):
            store.delete_stream(s, expected_revision=0)
        store.delete_stream(s, expected_revision=1)
        with pytest.raises(StreamNotFound):
            store.read_stream(s)
        assert store.stream_revision(s) is None
        result = store.append(s, [new(n=2)], StreamState.ANY)
        assert result.first_revision == 2
        assert [e.data["n"] for e in store.read_stream(s)] == [2]

    def test_deleting_a_missing_stream_raises(self, store: EventStore):
        with pytest.raises(StreamNotFound):
            store.delete_stream(stream_name())

    def test_ping(self, store: EventStore):
        store.ping()


def _collect(sub: Any, count: int, timeout: float = 10.0) -> list[RecordedEvent]:
    got: list[RecordedEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(sub.next_batch(max_count=count - len(got), timeout=0.5))
    assert len(got) == count, f"expected {count} events, got {len(got)}"
    return got
