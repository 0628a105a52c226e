"""Reputation's published read side: reviews (shown once revealed) and every
user's reputation per role, computed by ``services.reputation.formula``.

The projection's version is the formula's: a new formula rebuilds every
reputation from the log rather than changing numbers silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.reputation import formula
from shared.errors import NotFound
from shared.jsonready import aware, json_ready
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent

metadata = sa.MetaData()

feedback = sa.Table(
    "feedback_windows",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("total_amount", sa.BigInteger, nullable=False),
    sa.Column("on_time", sa.Boolean, nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("reviews", sa.Integer, nullable=False),
    sa.Column("revealed", sa.Boolean, nullable=False),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("reviewer_id", sa.String(64), primary_key=True),
    sa.Column("reviewee_id", sa.String(64), nullable=False, index=True),
    sa.Column("reviewee_role", sa.String(6), nullable=False),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("visible", sa.Boolean, nullable=False),
)

reputations = sa.Table(
    "reputations",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(6), primary_key=True),
    sa.Column("formula_version", sa.Integer, nullable=False),
    sa.Column("score_hundredths", sa.Integer),
    sa.Column("reviews", sa.Integer, nullable=False),
    sa.Column("contracts", sa.Integer, nullable=False),
    sa.Column("completion_rate", sa.Integer),
    sa.Column("on_time_rate", sa.Integer),
    sa.Column("rehire_rate", sa.Integer),
    sa.Column("job_success", sa.Integer),
)


def _recompute(conn: Connection, user_id: str, role: str) -> None:
    mine, other = (
        (feedback.c.seller_id, "buyer_id")
        if role == "seller"
        else (
            feedback.c.buyer_id,
            "seller_id",
        )
    )
    ended = [
        formula.EndedContract(
            r.contract_id,
            getattr(r, other),
            r.outcome,
            r.total_amount,
            r.on_time,
            aware(r.ended_at),
        )
        for r in conn.execute(sa.select(feedback).where(mine == user_id)).all()
    ]
    rated = [
        formula.Review(r.contract_id, r.rating)
        for r in conn.execute(
            sa.select(reviews.c.contract_id, reviews.c.rating).where(
                reviews.c.reviewee_id == user_id,
                reviews.c.reviewee_role == role,
                reviews.c.visible.is_(True),
            )
        ).all()
    ]
    result = formula.reputation(ended, rated)
    values = {
        "formula_version": result["formula_version"],
        "score_hundredths": None if result["score"] is None else round(result["score"] * 100),
        **{
            k: result[k]
            for k in (
                "reviews",
                "contracts",
                "completion_rate",
                "on_time_rate",
                "rehire_rate",
                "job_success",
            )
        },
    }
    key = sa.and_(reputations.c.user_id == user_id, reputations.c.role == role)
    if conn.execute(reputations.update().where(key).values(**values)).rowcount == 0:
        conn.execute(reputations.insert().values(user_id=user_id, role=role, **values))


def erase(conn: Connection, person: str) -> None:
    """The texts of the person's reviews (ratings and reputations stay)."""
    conn.execute(reviews.update().where(reviews.c.reviewer_id == person).values(text=ERASED))


class ReputationView(Projection):
    name = "reputation"
    version = formula.FORMULA_VERSION
    metadata = metadata
    categories: Sequence[str] | None = ("feedback", "user")
    event_types: Sequence[str] = (
        "FeedbackWindowOpened",
        "ReviewSubmitted",
        "ReviewsRevealed",
        "PersonalDataErased",
    )

    def __init__(self, own_streams_only: bool = False) -> None:
        """``own_streams_only``: the owning service's copy, which reads no other
        service's streams and so hears of erasures through RabbitMQ instead
        (its handler calls :func:`erase`, as this view does on the event)."""
        if own_streams_only:
            self.categories = tuple(c for c in self.categories or () if c != "user")
            self.event_types = tuple(t for t in self.event_types if t != "PersonalDataErased")

    # ``PersonalDataErased``: what the log reads as once the person's keys are
    # gone (their fields "[erased]"), so live processing equals a rebuild.

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        d, at = event.data, event.recorded_at
        if event.type == "PersonalDataErased":
            erase(conn, d["user_id"])
            return
        where = feedback.c.contract_id == d["contract_id"]
        if event.type == "FeedbackWindowOpened":
            conn.execute(
                feedback.insert().values(
                    **{
                        k: d[k]
                        for k in (
                            "contract_id",
                            "buyer_id",
                            "seller_id",
                            "outcome",
                            "total_amount",
                            "on_time",
                            "ended_at",
                            "closes_at",
                        )
                    },
                    reviews=0,
                    revealed=False,
                )
            )
            _recompute(conn, d["seller_id"], "seller")
            _recompute(conn, d["buyer_id"], "buyer")
        elif event.type == "ReviewSubmitted":
            conn.execute(
                reviews.insert().values(
                    **{
                        k: d[k]
                        for k in (
                            "contract_id",
                            "reviewer_id",
                            "reviewee_id",
                            "reviewee_role",
                            "rating",
                            "categories",
                            "text",
                        )
                    },
                    submitted_at=at,
                    visible=False,
                )
            )
            conn.execute(feedback.update().where(where).values(reviews=feedback.c.reviews + 1))
        elif event.type == "ReviewsRevealed":
            conn.execute(feedback.update().where(where).values(revealed=True))
            conn.execute(
                reviews.update()
                .where(reviews.c.contract_id == d["contract_id"])
                .values(visible=True)
            )
            row = conn.execute(sa.select(feedback).where(where)).one()
            _recompute(conn, row.seller_id, "seller")
            _recompute(conn, row.buyer_id, "buyer")


# -- reads ---------------------------------------------------------------------------


def summary(conn: Connection, user_id: str) -> dict[str, Any]:
    """The user's reputation as a seller and as a buyer (None where none yet)."""
    rows = conn.execute(sa.select(reputations).where(reputations.c.user_id == user_id)).all()
    by_role = {r.role: row_summary(r) for r in rows}
    return {"as_seller": by_role.get("seller"), "as_buyer": by_role.get("buyer")}


def summaries(conn: Connection, user_ids: list[str], role: str) -> dict[str, dict[str, Any]]:
    if not user_ids:
        return {}
    rows = conn.execute(
        sa.select(reputations).where(
            reputations.c.user_id.in_(user_ids), reputations.c.role == role
        )
    ).all()
    return {r.user_id: row_summary(r) for r in rows}


def row_summary(r: Any) -> dict[str, Any]:
    """A ``reputations`` row as the API shows it."""
    return {
        "formula_version": r.formula_version,
        "score": None if r.score_hundredths is None else r.score_hundredths / 100,
        "reviews": r.reviews,
        "contracts": r.contracts,
        "completion_rate": r.completion_rate,
        "on_time_rate": r.on_time_rate,
        "rehire_rate": r.rehire_rate,
        "job_success": r.job_success,
    }


def _review(r: Any) -> dict[str, Any]:
    return json_ready(
        {
            "contract_id": r.contract_id,
            "reviewer_id": r.reviewer_id,
            "reviewee_id": r.reviewee_id,
            "reviewee_role": r.reviewee_role,
            "rating": r.rating,
            "categories": r.categories,
            "text": r.text,
            "submitted_at": r.submitted_at,
        }
    )


def reviews_of(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(reviews)
        .where(reviews.c.reviewee_id == user_id, reviews.c.visible.is_(True))
        .order_by(reviews.c.submitted_at.desc())
    ).all()
    return [_review(r) for r in rows]


def contract_reviews(conn: Connection, contract_id: str, viewer_id: str) -> dict[str, Any]:
    """A party sees their own review, and the other's once revealed."""
    window = conn.execute(
        sa.select(feedback).where(feedback.c.contract_id == contract_id)
    ).one_or_none()
    if window is None:
        raise NotFound("no reviews yet: the contract has not ended")
    rows = conn.execute(sa.select(reviews).where(reviews.c.contract_id == contract_id)).all()
    return json_ready(
        {
            "closes_at": window.closes_at,
            "revealed": window.revealed,
            "items": [_review(r) for r in rows if r.visible or r.reviewer_id == viewer_id],
            "pending_from_other": not window.revealed
            and any(r.reviewer_id != viewer_id for r in rows),
        }
    )


def windows_to_close(conn: Connection, now: Any) -> list[str]:
    rows = conn.execute(
        sa.select(feedback.c.contract_id).where(
            feedback.c.revealed.is_(False), feedback.c.reviews > 0, feedback.c.closes_at <= now
        )
    ).all()
    return [r.contract_id for r in rows]
