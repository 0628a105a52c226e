"""Projects' published read side: the browse/search view, saved alerts and their
matches, projected from projects' events; and the queries that read them.

Full-text search uses PostgreSQL's ``tsvector`` (``websearch_to_tsquery``,
English stemming, ``ts_rank``) or, on the embedded default, SQLite's FTS5
(prefix match of every word, ``bm25``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.projects.events import budget_range, words
from shared.errors import InvalidInput, NotFound
from shared.jsonready import json_ready
from shared.pagination import decode_cursor, encode_cursor
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent
from shared.skills import normalize_skills

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
sa.event.listen(
    projects,
    "after_create",
    sa.DDL(
        "CREATE VIRTUAL TABLE IF NOT EXISTS project_fts USING fts5(project_id UNINDEXED, body)"
    ).execute_if(dialect="sqlite"),
)
sa.event.listen(
    projects, "before_drop", sa.DDL("DROP TABLE IF EXISTS project_fts").execute_if(dialect="sqlite")
)
sa.event.listen(
    projects,
    "after_create",
    # Generated from the row itself: indexing a project costs no statement of its own.
    sa.DDL(
        "ALTER TABLE projects ADD COLUMN search tsvector GENERATED ALWAYS AS "
        "(to_tsvector('english', title || ' ' || description || ' ' || scope)) STORED; "
        # without a pending list: it made searches after a burst of postings
        # scan the table (measured 9.3 ms against 2.9 ms once flushed)
        "CREATE INDEX projects_search ON projects USING gin (search) WITH (fastupdate = off)"
    ).execute_if(dialect="postgresql"),
)


def _body(title: str, description: str, scope: str) -> str:
    return " ".join([title, description, scope])


class ProjectsView(Projection):
    name = "projects_search"
    version = 2
    metadata = metadata
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
            case "ProjectEdited":
                project_id = event.subject
                current = conn.execute(
                    sa.select(projects).where(projects.c.project_id == project_id)
                ).one()
                merged = {**dict(current._mapping), **data}
                values = {**self._content(merged), "version": data["version"], "updated_at": at}
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
        if conn.dialect.name == "postgresql":
            return
        if not new:
            conn.execute(
                sa.text("DELETE FROM project_fts WHERE project_id = :id"), {"id": project_id}
            )
        conn.execute(
            sa.text("INSERT INTO project_fts (project_id, body) VALUES (:id, :body)"),
            {
                "id": project_id,
                "body": _body(content["title"], content["description"], content["scope"]),
            },
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


_BAD_CURSOR = InvalidInput("the cursor is not valid", {"fields": {"cursor": ["Not a cursor."]}})


def _fts_query(q: str) -> str:
    """FTS5 syntax from free text: every word, as a prefix, all required."""
    return " AND ".join(f'"{w}"*' for w in words(q))


def search(conn: Connection, query: dict[str, Any]) -> dict[str, Any]:
    """One page of projects matching ``query`` (see ``api.SearchQuery``), with
    how many match in all and per skill."""
    pg = conn.dialect.name == "postgresql"
    p = projects.c
    conditions: list[Any] = [p.status == query["status"]]
    rank: Any = None
    source: Any = projects
    q = (query.get("q") or "").strip()
    if q and words(q):
        if pg:
            tsquery = sa.func.websearch_to_tsquery("english", q)
            conditions.append(sa.literal_column("projects.search").op("@@")(tsquery))
            rank = sa.func.ts_rank(sa.literal_column("projects.search"), tsquery)
        else:
            fts = (
                sa.text(
                    "SELECT project_id, bm25(project_fts) AS score FROM project_fts "
                    "WHERE project_fts MATCH :fts"
                )
                .bindparams(fts=_fts_query(q))
                .columns(project_id=sa.String, score=sa.Float)
                .subquery("fts")
            )
            source = projects.join(fts, p.project_id == fts.c.project_id)
            rank = -fts.c.score  # bm25: lower is better
    skills = [s for s in (query.get("skills") or "").split(",") if s.strip()]
    if skills:
        try:
            wanted = normalize_skills(skills)
        except ValueError as exc:
            raise InvalidInput(str(exc), {"fields": {"skills": [str(exc)]}}) from exc
        having = sa.select(project_skills.c.project_id).where(project_skills.c.skill.in_(wanted))
        if query.get("skills_mode") == "all":
            having = having.group_by(project_skills.c.project_id).having(
                sa.func.count(sa.distinct(project_skills.c.skill)) == len(wanted)
            )
        conditions.append(p.project_id.in_(having))
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

    base = sa.select(projects).select_from(source).where(*conditions)
    sort = query.get("sort") or ("relevance" if rank is not None else "newest")
    limit = query["limit"]
    cursor = decode_cursor(query.get("cursor"))
    if cursor is not None and cursor.get("s") != sort:
        raise _BAD_CURSOR

    if sort == "relevance":
        if rank is None:
            raise InvalidInput(
                "sorting by relevance needs a search text",
                {"fields": {"sort": ["Give q as well."]}},
            )
        offset = int(cursor.get("o", 0)) if cursor else 0
        page_query = (
            base.add_columns(rank.label("rank"))
            .order_by(sa.desc("rank"), p.project_id)
            .offset(offset)
        )
        next_position = lambda rows: {"s": sort, "o": offset + limit}  # noqa: E731
    else:
        column, descending = {
            "newest": (p.posted_at, True),
            "budget": (p.budget_high, True),
            "deadline": (p.deadline, False),
        }[sort]
        page_query = base
        if cursor is not None:
            try:
                value = cursor["v"]
                if sort == "newest":
                    value = datetime.fromisoformat(value)
                elif sort == "deadline":
                    value = date.fromisoformat(value)
                last_id = str(cursor["id"])
            except (KeyError, TypeError, ValueError):
                raise _BAD_CURSOR from None
            after = (
                sa.or_(column < value, sa.and_(column == value, p.project_id < last_id))
                if descending
                else sa.or_(column > value, sa.and_(column == value, p.project_id > last_id))
            )
            page_query = page_query.where(after)
        order = (
            (column.desc(), p.project_id.desc())
            if descending
            else (column.asc(), p.project_id.asc())
        )
        page_query = page_query.order_by(*order)

        def next_position(rows: list[Any]) -> dict[str, Any]:
            last = rows[-1]._mapping
            return {"s": sort, "v": json_ready(last[column.key]), "id": last["project_id"]}

    rows = conn.execute(page_query.limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(next_position(page)) if len(rows) > limit else None

    # The total and the per-skill counts in one statement: the matching set is
    # found once (a CTE used twice is materialised), not once for each. The
    # skills are counted from the matching rows' own lists: joining
    # project_skills made PostgreSQL hash all of it (7 of search's 19 ms).
    matching = base.with_only_columns(p.project_id, p.skills).cte("matching")
    each_skill = sa.func.json_array_elements_text if pg else sa.func.json_each
    skill = each_skill(matching.c.skills).table_valued("value", joins_implicitly=True)
    facets = (
        sa.select(skill.c.value.label("skill"), sa.func.count().label("n"))
        .select_from(matching)
        .join(skill, sa.true())
        .group_by(skill.c.value)
        .order_by(sa.desc("n"), skill.c.value)
        .limit(50)
        .subquery("facets")
    )
    counted = conn.execute(
        sa.union_all(
            sa.select(sa.null().label("skill"), sa.func.count().label("n")).select_from(matching),
            sa.select(facets.c.skill, facets.c.n),
        )
    ).all()
    total = next(n for skill, n in counted if skill is None)
    counts = sorted(((skill, n) for skill, n in counted if skill is not None), key=_by_count)
    return {
        "items": [project_view(r) for r in page],
        "next_cursor": next_cursor,
        "total": total,
        "skill_counts": [{"skill": skill, "count": n} for skill, n in counts],
    }


def _by_count(facet: tuple[str, int]) -> tuple[int, str]:
    return -facet[1], facet[0]


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
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, key = datetime.fromisoformat(after["at"]), str(after["k"])
        except (KeyError, TypeError, ValueError):
            raise _BAD_CURSOR from None
        query = query.where(
            sa.or_(m.matched_at < at, sa.and_(m.matched_at == at, m.project_id < key))
        )
    rows = conn.execute(
        query.order_by(m.matched_at.desc(), m.project_id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
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
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(
            {"at": json_ready(page[-1].matched_at), "k": page[-1].project_id}
        )
    return {"items": items, "next_cursor": next_cursor}
