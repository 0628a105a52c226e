"""The gateway's check of access tokens against ended sessions, with a fake
view and log: what it refuses, and how stale it lets the view be."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from gateway import sessions
from services.identity.views import ended_sessions, session_cutoffs, sessions_metadata
from shared.auth import Principal
from shared.errors import SessionEnded, Unavailable


@dataclass
class Newest:
    position: int


@dataclass
class FakeStore:
    newest: int | None = None

    def read_all(self, **kw: Any) -> list[Newest]:
        return [] if self.newest is None else [Newest(self.newest)]


@dataclass
class FakeRunner:
    engine: sa.Engine
    store: FakeStore = field(default_factory=FakeStore)
    position: int | None = None

    def checkpoint(self) -> int | None:
        return self.position


@dataclass
class FakeHandle:
    runner: FakeRunner

    @property
    def live_position(self) -> int | None:
        return self.runner.position

    def connect(self) -> sa.Connection:
        return self.runner.engine.connect()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sessions.time, "monotonic", clock)
    return clock


@pytest.fixture
def view() -> FakeHandle:
    engine = sa.create_engine("sqlite://")
    sessions_metadata.create_all(engine)
    return FakeHandle(FakeRunner(engine))


def token(session: str = "s1", issued_at: float = 100.0) -> Principal:
    return Principal("u1", ("buyer",), session, True, issued_at)


def end(view: FakeHandle, position: int, **row: Any) -> None:
    table = ended_sessions if "session_id" in row else session_cutoffs
    with view.runner.engine.begin() as conn:
        conn.execute(table.insert().values(**row))
    view.runner.position = view.runner.store.newest = position


def test_a_logged_out_session_is_refused_as_soon_as_the_view_has_it(clock, view):
    gate = sessions.SessionGate()
    gate.check(view, token())  # known, and not ended: remembered
    end(view, 5, session_id="s1", ended_at=datetime.now(UTC))
    with pytest.raises(SessionEnded):
        gate.check(view, token())  # the view moved: asked again
    gate.check(view, token("s2"))


def test_ending_every_session_spares_later_tokens_and_the_kept_one(clock, view):
    gate = sessions.SessionGate()
    cutoff = datetime.fromtimestamp(200.0, UTC)
    end(view, 7, user_id="u1", ended_at=cutoff, kept_session_id="kept")
    with pytest.raises(SessionEnded):
        gate.check(view, token("s1", issued_at=150.0))
    gate.check(view, token("s1", issued_at=250.0))  # logged in again since
    gate.check(view, token("kept", issued_at=150.0))  # the session that changed the password


def test_a_view_behind_the_log_for_longer_than_the_bound_is_not_trusted(clock, view):
    gate = sessions.SessionGate()
    gate.check(view, token())
    view.runner.store.newest = 9  # an ending the view has not applied
    clock.now += sessions.PROBE_SECONDS
    gate.check(view, token())  # within the bound: trusted
    clock.now += sessions.MAX_LAG_SECONDS
    with pytest.raises(Unavailable):
        gate.check(view, token())
    view.runner.position = 9  # caught up
    clock.now += sessions.PROBE_SECONDS
    gate.check(view, token())


class SlowStore(FakeStore):
    """A log whose read waits until the test lets it answer."""

    def __init__(self) -> None:
        super().__init__()
        self.asked, self.answer = threading.Event(), threading.Event()

    def read_all(self, **kw: Any) -> list[Newest]:
        self.asked.set()
        assert self.answer.wait(5)
        return super().read_all(**kw)


def test_requests_during_a_probe_wait_for_its_answer_after_a_quiet_spell(clock, view):
    gate = sessions.SessionGate()
    gate.check(view, token())
    clock.now += sessions.MAX_LAG_SECONDS + 1  # nobody asked for a while
    view.runner.store = store = SlowStore()
    failures: list[BaseException] = []

    def request() -> None:
        try:
            gate.check(view, token())
        except BaseException as exc:
            failures.append(exc)

    first = threading.Thread(target=request)
    first.start()
    assert store.asked.wait(5)  # the first request is probing
    others = [threading.Thread(target=request) for _ in range(3)]
    for thread in others:
        thread.start()
    time.sleep(0.1)
    store.answer.set()
    for thread in [first, *others]:
        thread.join(5)
        assert not thread.is_alive()
    assert failures == []


def test_requests_during_a_probe_go_on_at_once_while_the_last_answer_holds(clock, view):
    gate = sessions.SessionGate()
    gate.check(view, token())
    clock.now += sessions.PROBE_SECONDS  # a probe is due, the last answer still holds
    view.runner.store = store = SlowStore()
    probing = threading.Thread(target=gate.check, args=(view, token()))
    probing.start()
    assert store.asked.wait(5)
    gate.check(view, token())  # not held up by the probe in flight
    assert probing.is_alive()
    store.answer.set()
    probing.join(5)
    assert not probing.is_alive()
