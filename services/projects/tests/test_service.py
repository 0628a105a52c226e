"""ProjectsService's entrypoints on the embedded event store, with a fixed clock."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.projects.service import ProjectsService
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleState
from shared.testing import ServiceHarness

BUYER, SELLER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def h(tmp_path: Path) -> ServiceHarness:
    return ServiceHarness(ProjectsService, tmp_path, {"PROJECT_IDLE_DAYS": 30})


def content(h: ServiceHarness, **changes: Any) -> dict[str, Any]:
    return {
        "title": "A landing page",
        "description": "One page, responsive, with a contact form.",
        "budget": {"type": "fixed", "amount": 250_000, "currency": "USD"},
        "deadline": (h.clock.today() + timedelta(days=30)).isoformat(),
        **changes,
    }


def started_contract(h: ServiceHarness, project_id: str) -> dict[str, Any]:
    """What contracts publishes when an offer on the project is accepted (set up
    here, in one place, as contracts' own events)."""
    contract_id = str(uuid.uuid4())
    started = {
        "contract_id": contract_id,
        "project_id": project_id,
        "proposal_id": str(uuid.uuid4()),
        "buyer_id": BUYER,
        "seller_id": SELLER,
    }
    h.append(f"contract-{contract_id}", [("ContractStarted", started)])
    return h.message(f"contract-{contract_id}", "ContractStarted")


def test_the_clock_says_what_today_is_for_the_deadline(h: ServiceHarness) -> None:
    deadline = (h.clock.today() + timedelta(days=2)).isoformat()
    h.clock.advance(timedelta(days=3))
    with pytest.raises(InvalidInput):
        h.worker(BUYER).post_project(content(h, deadline=deadline))
    posted = h.worker(BUYER).post_project(content(h))
    assert (posted["status"], posted["version"], posted["buyer_id"]) == ("open", 1, BUYER)


def test_a_retried_post_is_the_same_project_recorded_once(h: ServiceHarness) -> None:
    first = h.worker(BUYER, key="k1").post_project(content(h))
    again = h.worker(BUYER, key="k1").post_project(content(h))
    assert again == first
    assert h.types(f"project-{first['project_id']}") == ["ProjectPosted"]


def test_an_edit_that_changes_nothing_records_nothing(h: ServiceHarness) -> None:
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    edited = h.worker(BUYER).edit_project(project_id, {"title": "A better landing page"})
    same = h.worker(BUYER).edit_project(project_id, {"title": "A better landing page"})
    assert edited["version"] == same["version"] == 2
    assert h.types(f"project-{project_id}") == ["ProjectPosted", "ProjectEdited"]
    with pytest.raises(Forbidden):
        h.worker(SELLER).close_project(project_id)
    with pytest.raises(NotFound):
        h.worker(BUYER).close_project("not-a-project")


def test_a_lost_race_is_decided_again_on_the_fresh_state(h: ServiceHarness) -> None:
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    stream = f"project-{project_id}"
    h.race(stream, [("ProjectClosed", {"reason": "closed elsewhere"})])
    with pytest.raises(Conflict) as caught:
        h.worker(BUYER).edit_project(project_id, {"title": "A better landing page"})
    assert not isinstance(caught.value, StaleState)  # decided again: the project is closed
    assert h.types(stream) == ["ProjectPosted", "ProjectClosed"]


def test_a_stream_that_keeps_moving_is_a_409(h: ServiceHarness) -> None:
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    stream = f"project-{project_id}"
    h.race(stream, [("ProjectEdited", {"version": 2, "scope": "moving"})], times=5)
    with pytest.raises(StaleState):
        h.worker(BUYER).edit_project(project_id, {"title": "A better landing page"})


def test_a_started_contract_awards_the_project_once(h: ServiceHarness) -> None:
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    message = started_contract(h, project_id)
    h.worker().on_contract_started(message)
    h.worker().on_contract_started(message)  # redelivered
    assert h.types(f"project-{project_id}") == ["ProjectPosted", "ProjectAwarded"]


def test_idle_projects_expire_by_the_clock(h: ServiceHarness) -> None:
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    h.catch_up()
    h.clock.advance(timedelta(days=29))
    assert h.worker().expire_idle_projects() == 0
    h.clock.advance(timedelta(days=2))  # PROJECT_IDLE_DAYS is 30
    assert h.worker().expire_idle_projects() == 1
    assert h.types(f"project-{project_id}")[-1] == "ProjectExpired"


def test_only_the_seller_deletes_an_alert_and_only_once(h: ServiceHarness) -> None:
    alert_id = h.worker(SELLER).save_alert({"keywords": "landing page"})["alert_id"]
    with pytest.raises(Forbidden):
        h.worker(BUYER).delete_alert(alert_id)
    assert h.worker(SELLER).delete_alert(alert_id) == {"deleted": True}
    with pytest.raises(NotFound):
        h.worker(SELLER).delete_alert(alert_id)


def test_a_contract_started_on_a_closed_project_is_refused_for_contracts_to_cancel(
    h: ServiceHarness,
) -> None:
    """The owner of the truth re-checks (README, "How services learn of each
    other"): an offer accepted as the project closed is refused, once."""
    project_id = h.worker(BUYER).post_project(content(h))["project_id"]
    h.worker(BUYER).close_project(project_id, {"reason": "found someone elsewhere"})
    message = started_contract(h, project_id)
    h.worker().on_contract_started(message)
    h.worker().on_contract_started(message)  # redelivered
    assert h.types(f"project-{project_id}") == [
        "ProjectPosted",
        "ProjectClosed",
        "ProjectAwardRefused",
    ]
