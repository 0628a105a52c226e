"""Identity's published read side: the profile and file-record views, projected
from its events, and the queries that read them.

The gateway runs this projection in its own database so that profile and file
reads are one local query instead of an RPC hop; identity itself answers
commands from its event streams. The view shapes (``profile_view``) are the
same whether built from this read model or from a freshly written aggregate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.identity.profiles import FILE_FIELDS, Profile, completeness
from shared.errors import NotFound
from shared.jsonready import aware, json_ready
from shared.pagination import newest_first
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent
from shared.search import full_text_index, write_fts
from shared.sql import insert_for

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("buyer", sa.JSON, nullable=False),
    sa.Column("seller", sa.JSON, nullable=False),
    sa.Column("skills", sa.JSON, nullable=False),
    sa.Column("experience", sa.JSON, nullable=False),
    sa.Column("portfolio", sa.JSON, nullable=False),
    sa.Column("erased", sa.Boolean, nullable=False, server_default=sa.false()),
)

user_skills = sa.Table(
    "user_skills",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("skill", sa.String(100), primary_key=True, index=True),
)

freelancers = sa.Table(
    "freelancers",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("rate_amount", sa.BigInteger),
    sa.Column("rate_currency", sa.String(3)),
    sa.Index("freelancers_rate", "rate_currency", "rate_amount"),
)
"""Talent search: every seller who is not erased, with the text searched
(headline, bio, skills, experience) and the hourly rate to filter by."""

full_text_index(freelancers, "user_id", "freelancer_fts", "body")

saved_freelancers = sa.Table(
    "saved_freelancers",
    metadata,
    sa.Column("buyer_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), primary_key=True, index=True),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("file_id", sa.String(64), primary_key=True),
    sa.Column("owner_id", sa.String(64), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(10), nullable=False),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)


def profile_view(user: Profile, owner: bool) -> dict[str, Any]:
    """A profile as others see it; ``owner`` adds the email and completeness.
    An erased person's shows only that they were erased."""
    view: dict[str, Any] = {"user_id": user.user_id, "roles": sorted(user.roles)}
    if user.erased:
        return {**view, "buyer": None, "seller": None, "erased": True}
    view["buyer"] = dict(user.buyer) if "buyer" in user.roles else None
    view["seller"] = (
        {
            **user.seller,
            "skills": list(user.skills),
            "experience": list(user.experience.values()),
            "portfolio": list(user.portfolio.values()),
        }
        if "seller" in user.roles
        else None
    )
    if owner:
        view["email"] = user.email
        view["completeness"] = completeness(user)
    return json_ready(view)


_PROFILE_BY_ID = sa.select(users).where(users.c.user_id == sa.bindparam("user_id"))


def get_profile(conn: Connection, user_id: str, viewer_id: str | None) -> dict[str, Any]:
    row = conn.execute(_PROFILE_BY_ID, {"user_id": user_id}).one_or_none()
    if row is None:
        raise NotFound("no such user")
    user = Profile(
        user_id=row.user_id,
        email=row.email,
        roles=tuple(row.roles),
        buyer=row.buyer,
        seller=row.seller,
        skills=tuple(row.skills),
        experience={e["experience_id"]: e for e in row.experience},
        portfolio={p["item_id"]: p for p in row.portfolio},
        erased=row.erased,
    )
    return profile_view(user, owner=viewer_id == user_id)


def file_owners(conn: Connection, file_ids: list[str]) -> dict[str, str]:
    """Who uploaded each of ``file_ids`` (the ones this view has seen)."""
    rows = conn.execute(
        sa.select(files.c.file_id, files.c.owner_id).where(files.c.file_id.in_(file_ids))
    ).all()
    return {r.file_id: r.owner_id for r in rows}


def file_owners_and_purposes(conn: Connection, file_ids: list[str]) -> dict[str, tuple[str, str]]:
    """(uploader, purpose) of each of ``file_ids`` (the ones this view has seen)."""
    rows = conn.execute(
        sa.select(files.c.file_id, files.c.owner_id, files.c.purpose).where(
            files.c.file_id.in_(file_ids)
        )
    ).all()
    return {r.file_id: (r.owner_id, r.purpose) for r in rows}


def is_seller(conn: Connection, user_id: str) -> bool | None:
    """Whether a user (not erased) is a seller; None if this view never saw them."""
    row = conn.execute(
        sa.select(users.c.roles, users.c.erased).where(users.c.user_id == user_id)
    ).first()
    return None if row is None else "seller" in row.roles and not row.erased


def portfolio_item_ids(conn: Connection, user_id: str) -> frozenset[str]:
    """The ids of a user's portfolio items."""
    row = conn.execute(sa.select(users.c.portfolio).where(users.c.user_id == user_id)).first()
    return frozenset(str(p["item_id"]) for p in (row.portfolio if row else []))


def portfolio_samples(conn: Connection, items_by_seller: dict[str, list[str]]) -> dict[str, Any]:
    """The portfolio items shown as samples (title, type, URL), by item id: the
    first file of an item (its content type, its download URL) or else its
    first link (type ``link``). Items their seller removed are left out."""
    if not items_by_seller:
        return {}
    rows = conn.execute(
        sa.select(users.c.user_id, users.c.portfolio).where(
            users.c.user_id.in_(list(items_by_seller))
        )
    ).all()
    chosen = {
        str(item["item_id"]): item
        for row in rows
        for item in row.portfolio
        if str(item["item_id"]) in items_by_seller[row.user_id]
    }
    first_files = [str(i["file_ids"][0]) for i in chosen.values() if i.get("file_ids")]
    types = dict(
        conn.execute(
            sa.select(files.c.file_id, files.c.content_type).where(files.c.file_id.in_(first_files))
        ).all()
    )
    samples = {}
    for item_id, item in chosen.items():
        if item.get("file_ids"):
            file_id = str(item["file_ids"][0])
            kind, url = types.get(file_id, "file"), f"/api/v1/files/{file_id}/content"
        elif item.get("links"):
            kind, url = "link", item["links"][0]
        else:
            kind, url = "text", None
        samples[item_id] = {"item_id": item_id, "title": item["title"], "type": kind, "url": url}
    return samples


def list_files(conn: Connection, owner_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of a user's uploads, newest first."""
    query = sa.select(files).where(files.c.owner_id == owner_id)
    page, next_cursor = newest_first(
        conn, query, files.c.uploaded_at, files.c.file_id, limit, cursor
    )
    items = [{f: row._mapping[f] for f in FILE_FIELDS} for row in page]
    return {"items": items, "next_cursor": next_cursor}


def file_records(conn: Connection, file_ids: list[str]) -> list[dict[str, Any]]:
    """The records of ``file_ids`` this view has seen, in that order."""
    rows = {
        r.file_id: {f: r._mapping[f] for f in FILE_FIELDS}
        for r in conn.execute(sa.select(files).where(files.c.file_id.in_(file_ids)))
    }
    return [rows[f] for f in file_ids if f in rows]


class ProfilesProjection(Projection):
    name = "identity_profiles"
    version = 3
    metadata = metadata
    categories = ("user", "file")
    event_types = (
        "UserRegistered",
        "RoleAdded",
        "RoleRemoved",
        "EmailChanged",
        "BuyerProfileUpdated",
        "SellerProfileUpdated",
        "SellerSkillsSet",
        "ExperienceAdded",
        "ExperienceRemoved",
        "PortfolioItemAdded",
        "PortfolioItemRemoved",
        "FileUploaded",
        "FreelancerSaved",
        "FreelancerUnsaved",
        "PersonalDataErased",
    )
    SEARCHED = frozenset(
        {
            "UserRegistered",
            "RoleAdded",
            "SellerProfileUpdated",
            "SellerSkillsSet",
            "ExperienceAdded",
            "ExperienceRemoved",
        }
    )
    """What changes a seller's entry in talent search."""

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        data = json_ready(event.data)
        if event.type == "FileUploaded":
            conn.execute(files.insert().values(**data, uploaded_at=event.recorded_at))
            return
        if event.type == "PersonalDataErased":
            erase(conn, data["user_id"])
            return
        user_id = event.subject
        if event.type in ("FreelancerSaved", "FreelancerUnsaved"):
            _save(conn, user_id, data["seller_id"], event.recorded_at, event.type)
            return
        if event.type == "UserRegistered":
            conn.execute(
                users.insert().values(
                    user_id=user_id,
                    email=data["email"],
                    roles=data["roles"],
                    registered_at=event.recorded_at,
                    buyer={},
                    seller={},
                    skills=[],
                    experience=[],
                    portfolio=[],
                )
            )
            _index_freelancer(conn, user_id, new=True)
            return
        row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).one()
        changes: dict[str, Any] = {}
        match event.type:
            case "RoleAdded":
                changes["roles"] = sorted({*row.roles, data["role"]})
            case "RoleRemoved":
                changes["roles"] = sorted(set(row.roles) - {data["role"]})
            case "EmailChanged":
                changes["email"] = data["email"]
            case "BuyerProfileUpdated":
                changes["buyer"] = {**row.buyer, **data}
            case "SellerProfileUpdated":
                changes["seller"] = {**row.seller, **data}
            case "SellerSkillsSet":
                changes["skills"] = data["skills"]
                conn.execute(user_skills.delete().where(user_skills.c.user_id == user_id))
                if data["skills"]:
                    conn.execute(
                        user_skills.insert(),
                        [{"user_id": user_id, "skill": s} for s in data["skills"]],
                    )
            case "ExperienceAdded":
                changes["experience"] = [*row.experience, data]
            case "ExperienceRemoved":
                changes["experience"] = [
                    e for e in row.experience if e["experience_id"] != data["experience_id"]
                ]
            case "PortfolioItemAdded":
                changes["portfolio"] = [*row.portfolio, data]
            case "PortfolioItemRemoved":
                changes["portfolio"] = [p for p in row.portfolio if p["item_id"] != data["item_id"]]
        conn.execute(users.update().where(users.c.user_id == user_id).values(**changes))
        if event.type in self.SEARCHED:
            _index_freelancer(conn, user_id, new=False)


def _save(conn: Connection, buyer_id: str, seller_id: str, at: datetime, kind: str) -> None:
    key = sa.and_(
        saved_freelancers.c.buyer_id == buyer_id, saved_freelancers.c.seller_id == seller_id
    )
    conn.execute(saved_freelancers.delete().where(key))
    if kind == "FreelancerSaved":
        conn.execute(
            saved_freelancers.insert().values(buyer_id=buyer_id, seller_id=seller_id, saved_at=at)
        )


def freelancer_text(row: Any) -> str:
    """What talent search reads of a seller: headline, bio, skills and each
    experience's title, organisation and description."""
    parts = [row.seller.get("headline") or "", row.seller.get("bio") or "", *row.skills]
    for entry in row.experience:
        parts += [entry.get("title") or "", entry.get("organisation") or ""]
        parts.append(entry.get("description") or "")
    return " ".join(p for p in parts if p)


def _index_freelancer(conn: Connection, user_id: str, new: bool) -> None:
    """The user's entry in talent search, as their row now reads: there while
    they are a seller and not erased."""
    row = conn.execute(_PROFILE_BY_ID, {"user_id": user_id}).one()
    listed = "seller" in row.roles and not row.erased
    if not new:
        conn.execute(freelancers.delete().where(freelancers.c.user_id == user_id))
    body = freelancer_text(row) if listed else None
    if listed:
        rate = row.seller.get("hourly_rate") or {}
        conn.execute(
            freelancers.insert().values(
                user_id=user_id,
                body=body,
                rate_amount=rate.get("amount"),
                rate_currency=rate.get("currency"),
            )
        )
    write_fts(conn, "freelancer_fts", "user_id", user_id, body, new=new)


def erase(conn: Connection, user_id: str) -> None:
    """What the log reads as once the person's keys are gone, and no more:
    the profile emptied, the file names erased; an erased seller leaves talent
    search and every buyer's list, an erased buyer's list goes."""
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(email=ERASED, buyer={}, seller={}, experience=[], portfolio=[], erased=True)
    )
    conn.execute(files.update().where(files.c.owner_id == user_id).values(filename=ERASED))
    conn.execute(
        saved_freelancers.delete().where(
            sa.or_(
                saved_freelancers.c.buyer_id == user_id, saved_freelancers.c.seller_id == user_id
            )
        )
    )
    if conn.execute(_PROFILE_BY_ID, {"user_id": user_id}).first() is not None:
        _index_freelancer(conn, user_id, new=False)


def seller_summary(row: Any) -> dict[str, Any]:
    """A seller as lists show them (a ``users`` row)."""
    return {
        "user_id": row.user_id,
        "headline": row.seller.get("headline"),
        "skills": row.skills,
        "hourly_rate": row.seller.get("hourly_rate"),
        "photo_file_id": row.seller.get("photo_file_id"),
    }


def seller_summaries(conn: Connection, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Public seller summaries for a set of users (for lists of proposals)."""
    if not user_ids:
        return {}
    rows = conn.execute(sa.select(users).where(users.c.user_id.in_(set(user_ids)))).all()
    return {row.user_id: seller_summary(row) for row in rows}


def freelancer_view(row: Any) -> dict[str, Any]:
    """A seller as talent search and saved lists show them, without reputation."""
    return {**seller_summary(row), "bio": row.seller.get("bio")}


def seller_state(conn: Connection, user_id: str) -> str | None:
    """Whether ``user_id`` may be saved: None if so, else "missing" (no such
    user, or erased) or "not_seller"."""
    row = conn.execute(_PROFILE_BY_ID, {"user_id": user_id}).one_or_none()
    if row is None or row.erased:
        return "missing"
    return None if "seller" in row.roles else "not_seller"


def is_saved(conn: Connection, buyer_id: str, seller_id: str) -> bool:
    s = saved_freelancers.c
    query = sa.select(s.seller_id).where(s.buyer_id == buyer_id, s.seller_id == seller_id)
    return conn.execute(query).first() is not None


def list_saved(conn: Connection, buyer_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of a buyer's saved freelancers, most recently saved first;
    an erased seller is on nobody's list."""
    s = saved_freelancers.c
    query = (
        sa.select(users, s.saved_at, s.seller_id)
        .select_from(
            saved_freelancers.join(freelancers, freelancers.c.user_id == s.seller_id).join(
                users, users.c.user_id == s.seller_id
            )
        )
        .where(s.buyer_id == buyer_id)
    )
    page, next_cursor = newest_first(conn, query, s.saved_at, s.seller_id, limit, cursor)
    items = [
        {
            "seller_id": r.user_id,
            "saved_at": aware(r.saved_at).isoformat(),
            "freelancer": freelancer_view(r),
        }
        for r in page
    ]
    return {"items": items, "next_cursor": next_cursor}


# -- sessions: what the gateway refuses at once --------------------------------------

sessions_metadata = sa.MetaData()

ended_sessions = sa.Table(
    "ended_sessions",
    sessions_metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
)

session_cutoffs = sa.Table(
    "session_cutoffs",
    sessions_metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kept_session_id", sa.String(64)),
)

SESSION_EVENTS = ("SessionRevoked", "SessionsEnded")


class SessionsView(Projection):
    """Sessions that ended: one by logout or refresh-token reuse
    (``SessionRevoked``), or all of a user's up to a moment but one
    (``SessionsEnded``: log out everywhere, a password change or reset). The
    gateway refuses every access token of an ended session."""

    name = "identity_sessions"
    version = 1
    metadata = sessions_metadata
    categories = ("session", "user")
    event_types = SESSION_EVENTS

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        insert = insert_for(conn)
        if event.type == "SessionRevoked":
            stmt = insert(ended_sessions).values(
                session_id=event.subject, ended_at=event.recorded_at
            )
            conn.execute(stmt.on_conflict_do_nothing())
            return
        values = {
            "ended_at": event.data["ended_at"],
            "kept_session_id": event.data.get("kept_session_id"),
        }
        stmt = insert(session_cutoffs).values(user_id=event.subject, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))


def session_ended(conn: Connection, user_id: str, session_id: str, issued_at: float) -> bool:
    """Whether an access token (its user, session and issue time) speaks for a
    session that has ended."""
    if conn.execute(
        sa.select(ended_sessions.c.session_id).where(ended_sessions.c.session_id == session_id)
    ).first():
        return True
    cutoff = conn.execute(
        sa.select(session_cutoffs).where(session_cutoffs.c.user_id == user_id)
    ).one_or_none()
    if cutoff is None or cutoff.kept_session_id == session_id:
        return False
    return issued_at <= aware(cutoff.ended_at).timestamp()


def session_revoked(conn: Connection, session_id: str) -> bool:
    query = sa.select(ended_sessions.c.session_id).where(ended_sessions.c.session_id == session_id)
    return conn.execute(query).first() is not None


def sessions_ended_since(conn: Connection, user_id: str, at: datetime) -> bool:
    """Whether the view shows the user's sessions ended at ``at`` or later."""
    row = conn.execute(
        sa.select(session_cutoffs.c.ended_at).where(session_cutoffs.c.user_id == user_id)
    ).one_or_none()
    return row is not None and aware(row.ended_at) >= at
