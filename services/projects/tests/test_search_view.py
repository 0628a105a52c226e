"""Project search as the gateway's view answers it, on SQLite and PostgreSQL:
the conventions talent search shares with it (``shared.search``) hold here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.projects import views
from services.projects.api import SearchQuery
from shared.errors import InvalidInput
from shared.eventstore import EventMetadata, NewEvent
from shared.eventstore.sql import SqlEventStore
from shared.projection import ProjectionRunner
from shared.schemas import PublishedEvent, load_all_event_schemas, registry
from shared.sql import create_sql_engine

SOON, LATER = date.today() + timedelta(days=10), date.today() + timedelta(days=90)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = (
        f"sqlite:///{tmp_path / 'view.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_pg")
    )
    found = create_sql_engine(url)
    yield found
    found.dispose()


@pytest.fixture
def posted(engine: sa.Engine, tmp_path: Path) -> dict[str, str]:
    load_all_event_schemas()
    store = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    buyer = str(uuid.uuid4())
    ids = {}
    for name, title, description, skills, budget, deadline in [
        ("a", "Django developer for shop", "An online shop project for furniture.",
         ["python", "django"], {"type": "fixed", "amount": 100_000, "currency": "USD"}, SOON),
        ("b", "React dashboard", "A project of charts and tables for an analytics dashboard.",
         ["react", "typescript"],
         {"type": "hourly", "min_rate": 4000, "max_rate": 6000, "currency": "USD"}, LATER),
        ("c", "Python data pipeline", "Nightly ingestion project of sales data.",
         ["python", "airflow"], {"type": "fixed", "amount": 500_000, "currency": "EUR"}, LATER),
    ]:  # fmt: skip
        project_id = ids[name] = str(uuid.uuid4())
        data = {
            "project_id": project_id,
            "buyer_id": buyer,
            "title": title,
            "description": description,
            "budget": budget,
            "deadline": deadline,
            "skills": skills,
        }
        version, encoded = registry.encode("ProjectPosted", data)
        meta = EventMetadata.root(buyer, "projects")
        store.append(f"project-{project_id}", [NewEvent("ProjectPosted", encoded, meta, version)])
    runner = ProjectionRunner(views.ProjectsView(), store, engine)
    runner.prepare()
    runner.catch_up()
    store.close()
    return ids


def search(engine: sa.Engine, **params: Any) -> dict[str, Any]:
    query = SearchQuery().load({k: str(v) for k, v in params.items()})
    with engine.connect() as conn:
        return views.search(conn, query)


def ids(engine: sa.Engine, **params: Any) -> list[str]:
    return [p["project_id"] for p in search(engine, **params)["items"]]


def test_filters_sorts_and_facets(engine: sa.Engine, posted: dict[str, str]) -> None:
    a, b, c = posted["a"], posted["b"], posted["c"]
    assert ids(engine, q="developer") == [a]
    if engine.dialect.name == "postgresql":  # web search syntax; FTS5 takes every word
        assert set(ids(engine, q="dashboard OR pipeline")) == {b, c}
    assert ids(engine, q="dashboard analytics") == [b]
    assert set(ids(engine, skills="python")) == {a, c}
    assert ids(engine, skills="python,django", skills_mode="all") == [a]
    assert ids(engine, budget_type="hourly") == [b]
    assert ids(engine, budget_min=200_000) == [c]
    assert ids(engine, currency="EUR") == [c]
    assert ids(engine, deadline_before=SOON) == [a]
    assert ids(engine, sort="deadline")[0] == a
    assert ids(engine, sort="budget")[0] == c
    assert ids(engine, sort="newest") == ids(engine)
    page = search(engine, skills="python")
    assert page["total"] == 2
    assert [(s["skill"], s["count"]) for s in page["skill_counts"]] == [
        ("python", 2),
        ("airflow", 1),
        ("django", 1),
    ]
    with pytest.raises(InvalidInput):
        search(engine, sort="relevance")


@pytest.mark.parametrize(
    "params", [{"sort": "newest"}, {"sort": "budget"}, {"sort": "deadline"}, {"q": "project"}]
)
def test_cursor_paging_walks_every_match_once(
    engine: sa.Engine, posted: dict[str, str], params: dict[str, Any]
) -> None:
    whole = ids(engine, **params, limit=100)
    walked, cursor = [], None
    while True:
        page = search(engine, **params, limit=1, **({"cursor": cursor} if cursor else {}))
        walked += [p["project_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == whole and len(walked) == 3


def test_a_forged_cursor_is_refused_not_a_failure(
    engine: sa.Engine, posted: dict[str, str]
) -> None:
    """Cursors come from the client: out-of-range positions are a 422, never a
    database error (a negative offset, a value past a bigint)."""
    from shared.pagination import encode_cursor

    forged = (
        ({"q": "shop", "sort": "relevance"}, {"s": "relevance", "o": -1}),
        ({"q": "shop", "sort": "relevance"}, {"s": "relevance", "o": 2**64 - 1}),
        ({"sort": "budget"}, {"s": "budget", "v": 2**64 - 1, "id": "x"}),
        ({"sort": "budget"}, {"s": "budget", "v": 1e300, "id": "x"}),
    )
    for params, position in forged:
        with pytest.raises(InvalidInput):
            search(engine, **params, cursor=encode_cursor(position))


# -- which new events retire a search's answer -------------------------------------------

RETIREMENT_QUERIES: list[dict[str, Any]] = [
    {},
    {"q": "shop"},
    {"q": "dashboard analytics"},
    {"skills": "python"},
    {"skills": "python,django", "skills_mode": "all"},
    {"skills": "rust"},
    {"budget_type": "hourly"},
    {"budget_min": 200_000},
    {"budget_max": 50_000},
    {"currency": "EUR"},
    {"deadline_before": SOON},
    {"status": "closed"},
    {"q": "pipeline", "skills": "airflow", "sort": "budget"},
]

NEW_PROJECTS: list[tuple[str, str, list[str], dict[str, Any], date]] = [
    ("Rust command line tool", "A parser for logs.", ["rust"],
     {"type": "fixed", "amount": 30_000, "currency": "USD"}, LATER),
    ("Another furniture shop", "Shop with payments.", ["python", "django"],
     {"type": "fixed", "amount": 400_000, "currency": "USD"}, SOON),
    ("Analytics dashboard rework", "Dashboard for analytics of sales.", ["vue"],
     {"type": "hourly", "min_rate": 3000, "max_rate": 5000, "currency": "EUR"}, LATER),
    ("Warehouse pipeline", "Pipeline for stock.", ["airflow", "python"],
     {"type": "fixed", "amount": 900_000, "currency": "EUR"}, LATER),
]  # fmt: skip


class Log:
    """Events appended to a store, applied to the view, and read back as the
    gateway's view runner gives them to the response cache."""

    def __init__(self, engine: sa.Engine, tmp_path: Path) -> None:
        load_all_event_schemas()
        self.store = SqlEventStore(f"sqlite:///{tmp_path / 'retiring.sqlite'}")
        self.runner = ProjectionRunner(views.ProjectsView(), self.store, engine)
        self.runner.prepare()
        self.buyer = str(uuid.uuid4())

    def append(self, stream: str, event_type: str, data: dict[str, Any]) -> list[PublishedEvent]:
        """Append, apply, and give what the view applied."""
        before = self.runner.checkpoint() or 0
        meta = EventMetadata.root(self.buyer, "projects")
        self.store.append(stream, [registry.new_event(event_type, data, meta)])
        self.runner.catch_up()
        return [
            registry.published_event(e)
            for e in self.store.read_all(from_position=before)
            if e.position > before
        ]

    def post(self, title: str, description: str, skills: list[str], budget: Any, deadline: date):
        project_id = str(uuid.uuid4())
        data = {
            "project_id": project_id,
            "buyer_id": self.buyer,
            "title": title,
            "description": description,
            "budget": budget,
            "deadline": deadline,
            "skills": skills,
        }
        return project_id, self.append(f"project-{project_id}", "ProjectPosted", data)


def retired(engine: sa.Engine, params: dict[str, Any], events: list[PublishedEvent]) -> bool:
    query = SearchQuery().load({k: str(v) for k, v in params.items()})
    with engine.connect() as conn:
        return views.search_retired_by(conn, {"query": query}, events)


def test_a_project_posted_retires_exactly_the_answers_it_changes(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """For each new project and each search: the search's answer is retired
    if and only if the project changed it (joined its page, total or facets);
    an answer kept is the answer a fresh search gives."""
    log = Log(engine, tmp_path)
    for posted in NEW_PROJECTS[:2]:
        log.post(*posted)
    kept_somewhere = retired_somewhere = 0
    for posted in NEW_PROJECTS[2:] + NEW_PROJECTS[:2]:
        before = [search(engine, **params) for params in RETIREMENT_QUERIES]
        _, events = log.post(*posted)
        assert [e.type for e in events] == ["ProjectPosted"]
        for params, answer in zip(RETIREMENT_QUERIES, before, strict=True):
            changed = search(engine, **params) != answer
            assert retired(engine, params, events) == changed, (posted[0], params)
            kept_somewhere += not changed
            retired_somewhere += changed
    assert kept_somewhere and retired_somewhere


def test_any_other_change_of_a_project_retires_every_answer_and_alerts_none(
    engine: sa.Engine, tmp_path: Path
) -> None:
    log = Log(engine, tmp_path)
    project_id, posted = log.post(*NEW_PROJECTS[0])
    edited = log.append(
        f"project-{project_id}", "ProjectEdited", {"title": "Rust CLI", "version": 2}
    )
    other_id, other_posted = log.post(*NEW_PROJECTS[1])
    closed = log.append(f"project-{other_id}", "ProjectClosed", {"reason": "found someone"})
    nobody = {"status": "closed", "skills": "cobol"}  # no project matches it
    for params in (nobody, *RETIREMENT_QUERIES):
        assert retired(engine, params, edited)
        assert retired(engine, params, closed)
        # posted, then closed by an event this lookup has not seen yet: the
        # row is no longer as posted, so in doubt the answer goes
        assert retired(engine, params, other_posted)
    alert = PublishedEvent(
        uuid.uuid4(), "KeywordAlertMatched", 1, "projects", "alert-1", 1, 0,
        posted[0].recorded_at, posted[0].metadata, {},
    )  # fmt: skip
    assert not retired(engine, {}, [alert])
    assert not retired(engine, {}, [])
    log.store.close()
