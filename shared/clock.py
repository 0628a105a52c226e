"""What time it is, as a dependency: services ask ``self.clock`` rather than
``datetime.now``, so that a test can say what time it is.

In production :class:`Clock` injects a :class:`SystemClock`; tests hand the
service a :class:`FixedClock` instead (``worker_factory(..., clock=...)``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from nameko.extensions import DependencyProvider


class SystemClock:
    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Today's date in UTC."""
        return self.now().date()


class FixedClock(SystemClock):
    """A clock that says what it is told (and moves only when told to)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock tells aware times: give the time with its tzinfo")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at


class Clock(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects the clock a service reads the time from."""

    def __init__(self) -> None:
        self.clock = SystemClock()

    def get_dependency(self, worker_ctx: Any) -> SystemClock:
        return self.clock
