"""Projects' published read side: the browse/search view, saved alerts and their
matches, projected from projects' events; and the queries that read them.

Full-text search uses PostgreSQL's ``tsvector`` (``websearch_to_tsquery``,
English stemming, ``ts_rank``) or, on the embedded default, SQLite's FTS5
(prefix match of every word, ``bm25``): see ``shared.search``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.projects.events import CONTENT_FIELDS, budget_range
from shared.errors import NotFound
from shared.jsonready import json_ready
from shared.pagination import newest_first
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent
from shared.search import (
    Sort,
    full_text_index,
    search_page,
    skills_condition,
    text_match,
    write_fts,
)

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("objectives", sa.JSON, nullable=False),
    sa.Column("budget", sa.JSON, nullable=False),
    sa.Column("budget_type", sa.String(10), nullable=False),
    sa.Column("budget_low", sa.BigInteger, nullable=False),
    sa.Column("budget_high", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),
    sa.Column("skills", sa.JSON, nullable=False),
    sa.Column("attachment_ids", sa.JSON, nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("projects_status_posted", "status", "posted_at"),
)

project_versions = sa.Table(
    "project_versions",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
"""Every version of a project and what it changed: each field's value before
(null for the first version) and after."""

VERSIONED_FIELDS = CONTENT_FIELDS  # (what an edit may change)

project_skills = sa.Table(
    "project_skills",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("skill", sa.String(100), primary_key=True, index=True),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("criteria", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

alert_matches = sa.Table(
    "alert_matches",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("matched_keywords", sa.JSON, nullable=False),
    sa.Column("matched_skills", sa.JSON, nullable=False),
    sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
)

# The full-text index lives outside the portable table definitions.
full_text_index(
    projects, "project_id", "project_fts", "title || ' ' || description || ' ' || scope"
)


def _body(title: str, description: str, scope: str) -> str:
    return " ".join([title, description, scope])


class ProjectsView(Projection):
    name = "projects_search"
    version = 3
    metadata = metadata
    remembers = 1_000  # (search answers are retired only by what they show)
    categories = ("project", "alert", "user")
    event_types = (
        "PersonalDataErased",
        "ProjectPosted",
        "ProjectEdited",
        "ProjectClosed",
        "ProjectCancelled",
        "ProjectExpired",
        "ProjectAwarded",
        "KeywordAlertSaved",
        "KeywordAlertDeleted",
        "KeywordAlertMatched",
    )

    # ``PersonalDataErased``: what the log reads as once the person's keys are
    # gone (their fields "[erased]"), so live processing equals a rebuild.

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        data, at = event.data, event.recorded_at
        if event.type == "PersonalDataErased":
            erased = alerts.c.seller_id == data["user_id"]
            conn.execute(alerts.update().where(erased).values(name=ERASED))
            return
        match event.type:
            case "ProjectPosted":
                row = {
                    "project_id": data["project_id"],
                    "buyer_id": data["buyer_id"],
                    "status": "open",
                    "version": 1,
                    "posted_at": at,
                    "updated_at": at,
                    **self._content(data),
                }
                conn.execute(projects.insert(), row)
                self._index(conn, data["project_id"], row, new=True)
                posted = {f: {"from": None, "to": row[f]} for f in VERSIONED_FIELDS}
                self._version(conn, data["project_id"], 1, posted, at)
            case "ProjectEdited":
                project_id = event.subject
                current = conn.execute(
                    sa.select(projects).where(projects.c.project_id == project_id)
                ).one()
                before = dict(current._mapping)
                merged = {**before, **data}
                values = {**self._content(merged), "version": data["version"], "updated_at": at}
                changed = {
                    f: {"from": before[f], "to": values[f]} for f in VERSIONED_FIELDS if f in data
                }
                self._version(conn, project_id, data["version"], changed, at)
                conn.execute(
                    projects.update().where(projects.c.project_id == project_id).values(**values)
                )
                self._index(conn, project_id, values, new=False)
            case "ProjectClosed" | "ProjectCancelled" | "ProjectExpired" | "ProjectAwarded":
                project_id = event.subject
                status = event.type.removeprefix("Project").lower()
                conn.execute(
                    projects.update()
                    .where(projects.c.project_id == project_id)
                    .values(status=status, updated_at=at)
                )
            case "KeywordAlertSaved":
                criteria = {
                    k: json_ready(v)
                    for k, v in data.items()
                    if k not in ("alert_id", "seller_id", "name")
                }
                conn.execute(
                    alerts.insert().values(
                        alert_id=data["alert_id"],
                        seller_id=data["seller_id"],
                        name=data["name"],
                        criteria=criteria,
                        created_at=at,
                    )
                )
            case "KeywordAlertDeleted":
                conn.execute(alerts.delete().where(alerts.c.alert_id == data["alert_id"]))
            case "KeywordAlertMatched":
                conn.execute(
                    alert_matches.insert().values(
                        alert_id=data["alert_id"],
                        project_id=data["project_id"],
                        seller_id=data["seller_id"],
                        title=data["title"],
                        matched_keywords=data["matched_keywords"],
                        matched_skills=data["matched_skills"],
                        matched_at=at,
                    )
                )

    @staticmethod
    def _version(
        conn: Connection, project_id: str, version: int, changes: dict[str, Any], at: datetime
    ) -> None:
        conn.execute(
            project_versions.insert().values(
                project_id=project_id, version=version, changes=json_ready(changes), at=at
            )
        )

    @staticmethod
    def _content(data: dict[str, Any]) -> dict[str, Any]:
        budget = {k: v for k, v in data["budget"].items() if v is not None}
        low, high = budget_range(budget)
        return {
            "title": data["title"],
            "description": data["description"],
            "scope": data.get("scope") or "",
            "objectives": data.get("objectives") or [],
            "budget": budget,
            "budget_type": budget["type"],
            "budget_low": low,
            "budget_high": high,
            "currency": budget["currency"],
            "deadline": data["deadline"]
            if isinstance(data["deadline"], date)
            else date.fromisoformat(data["deadline"]),
            "skills": data.get("skills") or [],
            "attachment_ids": data.get("attachment_ids") or [],
        }

    @staticmethod
    def _index(conn: Connection, project_id: str, content: dict[str, Any], new: bool) -> None:
        """Skills and (SQLite) full-text rows of a project just written with
        ``content``; PostgreSQL's search column follows the row by itself."""
        if not new:
            conn.execute(project_skills.delete().where(project_skills.c.project_id == project_id))
        if content["skills"]:
            conn.execute(
                project_skills.insert(),
                [{"project_id": project_id, "skill": s} for s in content["skills"]],
            )
        write_fts(
            conn,
            "project_fts",
            "project_id",
            project_id,
            _body(content["title"], content["description"], content["scope"]),
            new=new,
        )


def project_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "project_id": m["project_id"],
        "buyer_id": m["buyer_id"],
        "status": m["status"],
        "version": m["version"],
        "title": m["title"],
        "description": m["description"],
        "scope": m["scope"],
        "objectives": m["objectives"],
        "budget": m["budget"],
        "deadline": json_ready(m["deadline"]),
        "skills": m["skills"],
        "attachment_ids": m["attachment_ids"],
        "posted_at": json_ready(m["posted_at"]),
        "updated_at": json_ready(m["updated_at"]),
    }


def get_project(conn: Connection, project_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(projects).where(projects.c.project_id == project_id)).one_or_none()
    if row is None:
        raise NotFound("no such project")
    return project_view(row)


def list_buyer_projects(
    conn: Connection, buyer_id: str, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A buyer's own projects, newest first: in every status, or in ``status``."""
    p = projects.c
    query = sa.select(projects).where(p.buyer_id == buyer_id)
    if status is not None:
        query = query.where(p.status == status)
    page, next_cursor = newest_first(conn, query, p.posted_at, p.project_id, limit, cursor)
    return {"items": [project_view(r) for r in page], "next_cursor": next_cursor}


def list_versions(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    """Every version of the project, first to last, with what each changed."""
    get_project(conn, project_id)
    v = project_versions.c
    rows = conn.execute(
        sa.select(project_versions).where(v.project_id == project_id).order_by(v.version)
    ).all()
    return [{"version": r.version, "changes": r.changes, "at": json_ready(r.at)} for r in rows]


def current_versions(conn: Connection, project_ids: Iterable[str]) -> dict[str, int]:
    """Each project's current version (those the view knows)."""
    wanted = set(project_ids)
    if not wanted:
        return {}
    p = projects.c
    rows = conn.execute(sa.select(p.project_id, p.version).where(p.project_id.in_(wanted)))
    return {r.project_id: r.version for r in rows}


def search(conn: Connection, query: dict[str, Any]) -> dict[str, Any]:
    """One page of projects matching ``query`` (see ``api.SearchQuery``), with
    how many match in all and per skill."""
    matching, rank = _matching(conn, query)
    return search_page(
        conn,
        matching,
        key=projects.c.project_id,
        skills=projects.c.skills,
        sort=query.get("sort") or ("relevance" if rank is not None else "newest"),
        sorts=SORTS,
        rank=rank,
        limit=query["limit"],
        cursor=query.get("cursor"),
        view=project_view,
    )


def _matching(conn: Connection, query: dict[str, Any]) -> tuple[sa.Select[Any], Any]:
    """The projects ``query`` matches, and their rank by its text (if any)."""
    p = projects.c
    text = text_match(conn, projects, "project_id", "project_fts", query.get("q"))
    conditions: list[Any] = [p.status == query["status"], text.condition]
    skills = skills_condition(
        p.project_id, project_skills, query.get("skills"), query.get("skills_mode")
    )
    if skills is not None:
        conditions.append(skills)
    if query.get("budget_type"):
        conditions.append(p.budget_type == query["budget_type"])
    if query.get("currency"):
        conditions.append(p.currency == query["currency"])
    if query.get("budget_min") is not None:
        conditions.append(p.budget_high >= query["budget_min"])
    if query.get("budget_max") is not None:
        conditions.append(p.budget_low <= query["budget_max"])
    if query.get("deadline_before"):
        conditions.append(p.deadline <= query["deadline_before"])
    if query.get("deadline_after"):
        conditions.append(p.deadline >= query["deadline_after"])
    if query.get("posted_since"):
        conditions.append(p.posted_at >= query["posted_since"])
    return sa.select(projects).select_from(text.source).where(*conditions), text.rank


NOT_IN_SEARCH = frozenset(
    {"KeywordAlertSaved", "KeywordAlertDeleted", "KeywordAlertMatched", "PersonalDataErased"}
)
"""What the view applies that no search answer shows (alerts and their names)."""


def search_retired_by(
    conn: Connection, inputs: dict[str, Any], events: Sequence[PublishedEvent]
) -> bool:
    """Whether ``events`` may change a search's answer (``gateway.response_cache``).

    A project posted changes it only if the search matches the project: it
    then joins the page, the total or a facet. That is asked of the view with
    the search's own conditions, so the text is matched as the search matches
    it on each database. A project changed since it was posted (its row no
    longer as posted: edited, or no longer open; perhaps by an event not yet
    among ``events``) retires the answer, as does every other change of a
    project."""
    posted = []
    for event in events:
        if event.type in NOT_IN_SEARCH:
            continue
        if event.type != "ProjectPosted":
            return True
        posted.append(event.data["project_id"])
    if not posted:
        return False
    p = projects.c
    as_posted = conn.execute(
        sa.select(sa.func.count())
        .select_from(projects)
        .where(p.project_id.in_(posted), p.version == 1, p.status == "open")
    ).scalar_one()
    if as_posted != len(set(posted)):
        return True
    matching, _ = _matching(conn, inputs["query"])
    shown = conn.execute(matching.with_only_columns(p.project_id).where(p.project_id.in_(posted)))
    return shown.first() is not None


SORTS = {
    "newest": Sort(projects.c.posted_at, descending=True, parse=datetime.fromisoformat),
    "budget": Sort(projects.c.budget_high, descending=True),
    "deadline": Sort(projects.c.deadline, descending=False, parse=date.fromisoformat),
}


def list_alerts(conn: Connection, seller_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(alerts).where(alerts.c.seller_id == seller_id).order_by(alerts.c.created_at)
    ).all()
    return [
        {"alert_id": r.alert_id, "seller_id": r.seller_id, "name": r.name, **r.criteria}
        for r in rows
    ]


def list_matches(
    conn: Connection, seller_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A seller's alert matches, newest first, including those from while they were away."""
    m = alert_matches.c
    query = sa.select(alert_matches).where(m.seller_id == seller_id)
    page, next_cursor = newest_first(
        conn, query, m.matched_at, m.project_id, limit, cursor, key_name="k"
    )
    items = [
        {
            "alert_id": r.alert_id,
            "project_id": r.project_id,
            "title": r.title,
            "matched_keywords": r.matched_keywords,
            "matched_skills": r.matched_skills,
            "matched_at": json_ready(r.matched_at),
        }
        for r in page
    ]
    return {"items": items, "next_cursor": next_cursor}
