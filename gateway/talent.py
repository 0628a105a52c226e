"""Talent search: one query over two services' views that only the gateway
keeps side by side, in its one database: identity's profiles (who sells, what
they say, their rate) and reputation's figures (job success, reviews).

Its conventions (free text, skills, cursors, totals and facets) are project
search's, from ``shared.search``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.identity.views import freelancer_view, freelancers, user_skills, users
from services.reputation.views import reputations, row_summary
from shared.search import Sort, search_page, skills_condition, text_match

NO_JOB_SUCCESS = -1
"""What a seller without a job-success score sorts as: after every score."""

_job_success = sa.func.coalesce(reputations.c.job_success, NO_JOB_SUCCESS)
_reviews = sa.func.coalesce(reputations.c.reviews, 0)

SORTS = {
    "job_success": Sort(_job_success, descending=True, parse=int),
    "rate": Sort(freelancers.c.rate_amount, descending=False, parse=int),
    "rate_desc": Sort(freelancers.c.rate_amount, descending=True, parse=int),
}


def search_freelancers(conn: Connection, query: dict[str, Any]) -> dict[str, Any]:
    """One page of sellers matching ``query`` (see ``identity.api.FreelancerSearchQuery``),
    with how many match in all and per skill. Erased people are in no view's
    ``freelancers``: they never appear."""
    f = freelancers.c
    text = text_match(conn, freelancers, "user_id", "freelancer_fts", query.get("q"))
    source = text.source.join(users, users.c.user_id == f.user_id).outerjoin(
        reputations, sa.and_(reputations.c.user_id == f.user_id, reputations.c.role == "seller")
    )
    conditions: list[Any] = [text.condition]
    skills = skills_condition(f.user_id, user_skills, query.get("skills"), query.get("skills_mode"))
    if skills is not None:
        conditions.append(skills)
    if query.get("currency"):
        conditions.append(f.rate_currency == query["currency"])
    if query.get("rate_min") is not None:
        conditions.append(f.rate_amount >= query["rate_min"])
    if query.get("rate_max") is not None:
        conditions.append(f.rate_amount <= query["rate_max"])
    if query.get("min_job_success") is not None:
        conditions.append(reputations.c.job_success >= query["min_job_success"])
    if query.get("min_reviews"):
        conditions.append(_reviews >= query["min_reviews"])
    columns = [
        f.user_id,
        users.c.seller,
        users.c.skills,
        *(c for c in reputations.c if c.key not in ("user_id", "role")),
    ]
    return search_page(
        conn,
        sa.select(*columns).select_from(source).where(*conditions),
        key=f.user_id,
        skills=users.c.skills,
        sort=query.get("sort") or ("relevance" if text.rank is not None else "job_success"),
        sorts=SORTS,
        rank=text.rank,
        limit=query["limit"],
        cursor=query.get("cursor"),
        view=_freelancer,
    )


def _freelancer(row: Any) -> dict[str, Any]:
    reputation = None if row.formula_version is None else row_summary(row)
    return {**freelancer_view(row), "reputation": reputation}
