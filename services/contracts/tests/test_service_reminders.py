"""The reminders' timer on the embedded event store, with a fixed clock."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from services.contracts import domain
from services.contracts.service import ContractsService
from services.contracts.tests.test_service import funded_contract, h
from shared.testing import ServiceHarness

__all__ = ["h"]  # the fixture


def test_a_reminder_is_recorded_once_across_ticks_and_restarts(
    h: ServiceHarness, tmp_path: Path
) -> None:
    _, _, stream, milestone = funded_contract(h)
    h.catch_up()
    assert h.worker().send_reminders() == 0  # due in 20 days: no candidate
    deadline = domain.due_at(date.fromisoformat(milestone["due_date"]))
    h.clock.advance(deadline - h.clock.now() - timedelta(hours=23))
    assert h.worker().send_reminders() == 1
    assert h.worker().send_reminders() == 1  # still a candidate, but nothing new
    assert h.types(stream).count("MilestoneDueSoon") == 1
    (soon,) = [e for e in h.recorded(stream) if e.type == "MilestoneDueSoon"]
    assert soon.data["seller_id"] == h.recorded(stream)[0].data["seller_id"]

    restarted = ServiceHarness(ContractsService, tmp_path, {"CONTRACT_REVIEW_DAYS": 14})
    restarted.clock.advance(h.clock.now() - restarted.clock.now())
    restarted.catch_up()
    restarted.worker().send_reminders()
    assert restarted.types(stream).count("MilestoneDueSoon") == 1

    h.clock.advance(timedelta(hours=24))
    h.worker().send_reminders()
    h.worker().send_reminders()
    assert h.types(stream).count("MilestoneOverdue") == 1
