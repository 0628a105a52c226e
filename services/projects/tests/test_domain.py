"""Projects' rules, with no broker, database or clock."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.projects import domain
from services.projects.domain import Project
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.eventstore import EventMetadata, RecordedEvent
from shared.schemas import DecodedEvent

TODAY = date(2026, 11, 27)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CONTENT = {
    "title": "Django shop",
    "description": "An online shop for handmade furniture.",
    "scope": "",
    "budget": {"type": "fixed", "amount": 100_000, "currency": "USD"},
    "deadline": date(2027, 1, 1),
    "skills": ["Python", "django "],
}


def fold(events, state=None, at=NOW):
    state = state or Project()
    for event_type, data in events:
        recorded = RecordedEvent(
            uuid.uuid4(), event_type, 1, data, EventMetadata.root("u"), "project-p1", 0, 1, at
        )
        state = domain.evolve(state, DecodedEvent(recorded, data, 1))
    return state


def posted() -> Project:
    return fold(domain.post(Project(), "p1", "buyer", CONTENT, TODAY))


def test_posting_normalises_skills_and_starts_at_version_one():
    project = posted()
    assert (project.status, project.version) == ("open", 1)
    assert project.content["skills"] == ["python", "django"]


@pytest.mark.parametrize(
    "budget",
    [
        {"type": "fixed", "currency": "USD"},
        {"type": "hourly", "currency": "USD", "min_rate": 5000},
        {"type": "hourly", "currency": "USD", "min_rate": 9000, "max_rate": 5000},
    ],
)
def test_bad_budgets(budget):
    with pytest.raises(InvalidInput):
        domain.post(Project(), "p1", "buyer", {**CONTENT, "budget": budget}, TODAY)


def test_deadline_must_be_in_the_future():
    with pytest.raises(InvalidInput):
        domain.post(Project(), "p1", "buyer", {**CONTENT, "deadline": TODAY}, TODAY)


def test_edits_are_new_versions_and_only_by_the_buyer_while_open():
    project = posted()
    assert domain.edit(project, "buyer", {"title": "Django shop"}, TODAY) == []
    (edit,) = domain.edit(project, "buyer", {"title": "Django shop v2"}, TODAY)
    assert edit == ("ProjectEdited", {"version": 2, "title": "Django shop v2"})
    with pytest.raises(Forbidden):
        domain.edit(project, "stranger", {"title": "x"}, TODAY)
    closed = fold(domain.close(project, "buyer", ""), project)
    with pytest.raises(Conflict):
        domain.edit(closed, "buyer", {"title": "again"}, TODAY)


def test_only_idle_open_projects_expire():
    project = fold(
        domain.post(Project(), "p1", "buyer", CONTENT, TODAY), at=NOW - timedelta(days=31)
    )
    assert domain.expire(project, NOW, timedelta(days=30)) == [
        ("ProjectExpired", {"idle_days": 30})
    ]
    assert domain.expire(project, NOW, timedelta(days=40)) == []
    assert (
        domain.expire(fold([("ProjectClosed", {"reason": ""})], project), NOW, timedelta(days=1))
        == []
    )


def test_award_happens_once():
    project = posted()
    awarded = fold(domain.award(project, "c1", "s1"), project)
    assert awarded.status == "awarded"
    assert domain.award(awarded, "c1", "s1") == []  # a redelivery


def test_a_project_no_longer_open_refuses_the_award_once():
    project = posted()
    awarded = fold(domain.award(project, "c1", "s1"), project)
    refused = domain.award(awarded, "c2", "s2")
    assert refused == [
        ("ProjectAwardRefused", {"contract_id": "c2", "seller_id": "s2", "status": "awarded"})
    ]
    assert domain.award(fold(refused, awarded), "c2", "s2") == []
    closed = fold([("ProjectClosed", {"reason": ""})], project)
    assert domain.award(closed, "c3", "s3")[0][1]["status"] == "closed"


PROJECT = {**CONTENT, "skills": ["python", "django"], "title": "Django developers wanted"}


@pytest.mark.parametrize(
    ("criteria", "matched"),
    [
        ({"keywords": "django"}, {"keywords": ["django"], "skills": []}),
        ({"keywords": "develop"}, {"keywords": ["develop"], "skills": []}),
        ({"keywords": "DJANGO Shop"}, {"keywords": ["django", "shop"], "skills": []}),
        ({"keywords": "django plumbing"}, None),
        ({"keywords": "django furniture"}, {"keywords": ["django", "furniture"], "skills": []}),
        ({"skills": ["python", "go"]}, {"keywords": [], "skills": ["python"]}),
        ({"skills": ["python", "go"], "skills_mode": "all"}, None),
        ({"budget_min": 150_000}, None),
        ({"budget_max": 150_000, "currency": "USD"}, {"keywords": [], "skills": []}),
        ({"budget_type": "hourly"}, None),
        ({"deadline_before": date(2026, 12, 1)}, None),
        ({"deadline_after": date(2026, 12, 1)}, {"keywords": [], "skills": []}),
    ],
)
def test_alert_matching(criteria, matched):
    assert domain.match_alert(criteria, PROJECT) == matched
