"""What every search of a gateway view shares: free text as each database takes
it, the skills filter, cursor paging, and the total with skill facets.

Full text uses PostgreSQL's ``tsvector`` (a generated ``search`` column,
``websearch_to_tsquery``, English stemming, ``ts_rank``) or, on the embedded
default, SQLite's FTS5 (a virtual table beside the view's table, prefix match
of every word, ``bm25``). Relevance pages by offset (a rank is no stable key);
every other sort pages by keyset, the last row's sort value and key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.errors import InvalidInput
from shared.jsonready import json_ready
from shared.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from shared.skills import normalize_skills

MAX_OFFSET = 100_000
"""The deepest page a relevance cursor reaches."""
BIGGEST = 2**63 - 1
"""What a sort value in a cursor may be at most (a database's bigint)."""
MAX_FACETS = 50

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Case- and accent-insensitive words, as searches and alerts compare them."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    return [w for w in _WORD.findall(folded) if not unicodedata.combining(w[0])]


# -- the full-text index -------------------------------------------------------------


def full_text_index(table: sa.Table, key: str, fts: str, pg_text: str) -> None:
    """Index ``table`` for :func:`text_match`: on PostgreSQL a generated
    ``search`` column of ``pg_text`` (SQL over the row's columns) with a GIN
    index; on SQLite an FTS5 table ``fts`` of (``key``, body), written by
    :func:`write_fts`."""
    sa.event.listen(
        table,
        "after_create",
        sa.DDL(  # type: ignore[no-untyped-call]
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({key} UNINDEXED, body)"
        ).execute_if(dialect="sqlite"),
    )
    sa.event.listen(
        table,
        "before_drop",
        sa.DDL(f"DROP TABLE IF EXISTS {fts}").execute_if(  # type: ignore[no-untyped-call]
            dialect="sqlite"
        ),
    )
    sa.event.listen(
        table,
        "after_create",
        # Generated from the row itself: indexing a row costs no statement of its own.
        sa.DDL(  # type: ignore[no-untyped-call]
            f"ALTER TABLE {table.name} ADD COLUMN search tsvector GENERATED ALWAYS AS "
            f"(to_tsvector('english', {pg_text})) STORED; "
            # without a pending list: it made searches after a burst of writes
            # scan the table (measured 9.3 ms against 2.9 ms once flushed)
            f"CREATE INDEX {table.name}_search ON {table.name} USING gin (search) "
            "WITH (fastupdate = off)"
        ).execute_if(dialect="postgresql"),
    )


def write_fts(
    conn: Connection, fts: str, key: str, row_id: str, body: str | None, new: bool = False
) -> None:
    """SQLite: (re)index one row's text (``None``: no longer indexed; ``new``:
    not indexed before, which spares a scan). PostgreSQL's generated column
    follows the row by itself."""
    if conn.dialect.name == "postgresql":
        return
    if not new:
        conn.execute(sa.text(f"DELETE FROM {fts} WHERE {key} = :id"), {"id": row_id})
    if body is not None:
        conn.execute(
            sa.text(f"INSERT INTO {fts} ({key}, body) VALUES (:id, :body)"),
            {"id": row_id, "body": body},
        )


def _fts_query(q: str) -> str:
    """FTS5 syntax from free text: every word, as a prefix, all required."""
    return " AND ".join(f'"{w}"*' for w in words(q))


@dataclass(frozen=True)
class TextMatch:
    source: Any
    """The table, joined to its FTS5 matches on SQLite."""
    condition: Any
    rank: Any
    """Higher is better."""


def text_match(conn: Connection, table: sa.Table, key: str, fts: str, q: str | None) -> TextMatch:
    """Rows of ``table`` (indexed by :func:`full_text_index`) matching the free
    text ``q``; everything, with no rank, when ``q`` has no words."""
    q = (q or "").strip()
    if not words(q):
        return TextMatch(table, sa.true(), None)
    if conn.dialect.name == "postgresql":
        tsquery = sa.func.websearch_to_tsquery("english", q)
        search: Any = sa.literal_column(f"{table.name}.search")
        return TextMatch(table, search.op("@@")(tsquery), sa.func.ts_rank(search, tsquery))
    found = (
        sa.text(f"SELECT {key}, bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH :fts")
        .bindparams(fts=_fts_query(q))
        .columns(sa.column(key, sa.String), sa.column("score", sa.Float))
        .subquery("fts")
    )
    # bm25: lower is better
    return TextMatch(table.join(found, table.c[key] == found.c[key]), sa.true(), -found.c.score)


# -- filters ---------------------------------------------------------------------------


def skills_condition(
    key: Any, skills_table: sa.Table, raw: str | None, mode: str | None
) -> Any | None:
    """Rows whose key is in ``skills_table`` (key, ``skill``) with any (or
    ``mode`` "all") of the comma-separated skills ``raw``; None if it names none."""
    skills = [s for s in (raw or "").split(",") if s.strip()]
    if not skills:
        return None
    try:
        wanted = normalize_skills(skills)
    except ValueError as exc:
        raise InvalidInput(str(exc), {"fields": {"skills": [str(exc)]}}) from exc
    owner = skills_table.c[key.key]
    having = sa.select(owner).where(skills_table.c.skill.in_(wanted))
    if mode == "all":
        having = having.group_by(owner).having(
            sa.func.count(sa.distinct(skills_table.c.skill)) == len(wanted)
        )
    return key.in_(having)


# -- one page, the total and the facets -----------------------------------------------------


@dataclass(frozen=True)
class Sort:
    column: Any
    """What the rows are ordered by (never NULL: coalesce a nullable column)."""
    descending: bool
    parse: Callable[[Any], Any] = lambda value: value
    """A cursor's JSON value back to the column's type."""


def search_page(
    conn: Connection,
    base: sa.Select[Any],
    *,
    key: Any,
    skills: Any,
    sort: str,
    sorts: dict[str, Sort],
    rank: Any,
    limit: int,
    cursor: str | None,
    view: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``base``'s rows (by ``view``), how many match in all and per
    skill (``skills``: the rows' JSON list of skills).

    ``sort`` is "relevance" (by ``rank``, which a text search gives) or one
    of ``sorts``; ties are broken by ``key``."""
    position = decode_cursor(cursor)
    if position is not None and position.get("s") != sort:
        raise BAD_CURSOR
    page_query, next_position = _ordered(base, key, sort, sorts, rank, position, limit)
    rows = conn.execute(page_query.limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(next_position(page)) if len(rows) > limit else None
    total, counts = _facets(conn, base, key, skills)
    return {
        "items": [view(r) for r in page],
        "next_cursor": next_cursor,
        "total": total,
        "skill_counts": [{"skill": skill, "count": n} for skill, n in counts],
    }


def _ordered(
    base: sa.Select[Any],
    key: Any,
    sort: str,
    sorts: dict[str, Sort],
    rank: Any,
    position: dict[str, Any] | None,
    limit: int,
) -> tuple[sa.Select[Any], Callable[[Sequence[Any]], dict[str, Any]]]:
    if sort == "relevance":
        if rank is None:
            raise InvalidInput(
                "sorting by relevance needs a search text",
                {"fields": {"sort": ["Give q as well."]}},
            )
        try:
            offset = int(position.get("o", 0)) if position else 0
        except (TypeError, ValueError):
            raise BAD_CURSOR from None
        if not 0 <= offset <= MAX_OFFSET:  # a cursor is the client's: forged, it is refused
            raise BAD_CURSOR
        query = base.add_columns(rank.label("rank")).order_by(sa.desc("rank"), key).offset(offset)
        return query, lambda rows: {"s": sort, "o": offset + limit}
    chosen = sorts[sort]
    column = chosen.column
    query = base.add_columns(column.label("sort_value"))
    if position is not None:
        try:
            value = chosen.parse(position["v"])
            last = str(position["id"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise BAD_CURSOR from None
        if isinstance(value, int | float) and not -BIGGEST <= value <= BIGGEST:
            raise BAD_CURSOR
        query = query.where(
            sa.or_(column < value, sa.and_(column == value, key < last))
            if chosen.descending
            else sa.or_(column > value, sa.and_(column == value, key > last))
        )
    order = (column.desc(), key.desc()) if chosen.descending else (column.asc(), key.asc())

    def next_position(rows: Sequence[Any]) -> dict[str, Any]:
        last_row = rows[-1]._mapping
        return {"s": sort, "v": json_ready(last_row["sort_value"]), "id": last_row[key.key]}

    return query.order_by(*order), next_position


def _facets(
    conn: Connection, base: sa.Select[Any], key: Any, skills: Any
) -> tuple[int, list[tuple[str, int]]]:
    """The total and the per-skill counts in one statement: the matching set is
    found once (a CTE used twice is materialised), not once for each. The
    skills are counted from the matching rows' own lists: joining the skills
    table made PostgreSQL hash all of it (7 of project search's 19 ms)."""
    pg = conn.dialect.name == "postgresql"
    matching = base.with_only_columns(key, skills.label("skills")).cte("matching")
    each_skill = sa.func.json_array_elements_text if pg else sa.func.json_each
    skill = each_skill(matching.c.skills).table_valued("value", joins_implicitly=True)
    facets = (
        sa.select(skill.c.value.label("skill"), sa.func.count().label("n"))
        .select_from(matching)
        .join(skill, sa.true())
        .group_by(skill.c.value)
        .order_by(sa.desc("n"), skill.c.value)
        .limit(MAX_FACETS)
        .subquery("facets")
    )
    counted = conn.execute(
        sa.union_all(
            sa.select(sa.null().label("skill"), sa.func.count().label("n")).select_from(matching),
            sa.select(facets.c.skill, facets.c.n),
        )
    ).all()
    total = next(n for skill_, n in counted if skill_ is None)
    counts = sorted(((s, n) for s, n in counted if s is not None), key=lambda f: (-f[1], f[0]))
    return total, counts
