"""Identity's read model: profiles and file records, projected from its events."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.projection import Projection
from shared.schemas import DecodedEvent

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
)

user_skills = sa.Table(
    "user_skills",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("skill", sa.String(100), primary_key=True, index=True),
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


def _json_ready(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


class ProfilesProjection(Projection):
    name = "identity_profiles"
    version = 1
    metadata = metadata
    categories = ("user", "file")
    event_types = (
        "UserRegistered",
        "RoleAdded",
        "BuyerProfileUpdated",
        "SellerProfileUpdated",
        "SellerSkillsSet",
        "ExperienceAdded",
        "ExperienceRemoved",
        "PortfolioItemAdded",
        "PortfolioItemRemoved",
        "FileUploaded",
    )

    def apply(self, conn: Connection, event: DecodedEvent) -> None:
        data = _json_ready(event.data)
        if event.type == "FileUploaded":
            conn.execute(files.insert().values(**data, uploaded_at=event.recorded.recorded_at))
            return
        user_id = event.recorded.stream.split("-", 1)[1]
        if event.type == "UserRegistered":
            conn.execute(
                users.insert().values(
                    user_id=user_id,
                    email=data["email"],
                    roles=data["roles"],
                    registered_at=event.recorded.recorded_at,
                    buyer={},
                    seller={},
                    skills=[],
                    experience=[],
                    portfolio=[],
                )
            )
            return
        row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).one()
        changes: dict[str, Any] = {}
        match event.type:
            case "RoleAdded":
                changes["roles"] = sorted({*row.roles, data["role"]})
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
