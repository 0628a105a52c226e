"""How a profile reads, from identity's published events: the part of a user
anyone may see, and how complete it is. Shared by identity's domain and the
views the gateway keeps, so the gateway needs nothing of identity's domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FILE_FIELDS = (
    "file_id",
    "owner_id",
    "sha256",
    "size",
    "content_type",
    "filename",
    "purpose",
    "visibility",
)
"""What a file's record shows (who else may read it is identity's own business)."""


@dataclass(frozen=True)
class Profile:
    """A user as the published events tell it (no credentials)."""

    user_id: str = ""
    email: str = ""
    roles: tuple[str, ...] = ()
    buyer: dict[str, Any] = field(default_factory=dict)
    seller: dict[str, Any] = field(default_factory=dict)
    skills: tuple[str, ...] = ()
    experience: dict[str, dict[str, Any]] = field(default_factory=dict)
    portfolio: dict[str, dict[str, Any]] = field(default_factory=dict)
    erased: bool = False
    """The person's data was erased (``PersonalDataErased``): what is left
    of them reads as ``[erased]``."""


def completeness(user: Profile) -> dict[str, dict[str, Any]]:
    """Per role: how complete the profile is, and what is missing."""
    result: dict[str, dict[str, Any]] = {}
    if "buyer" in user.roles:
        checks = {
            "company_name": bool(user.buyer.get("company_name")),
            "industry": bool(user.buyer.get("industry")),
            "about": bool(user.buyer.get("about")),
            "website": bool(user.buyer.get("website")),
            "project_types": bool(user.buyer.get("project_types")),
        }
        result["buyer"] = _score(checks)
    if "seller" in user.roles:
        checks = {
            "headline": bool(user.seller.get("headline")),
            "bio": bool(user.seller.get("bio")),
            "skills": bool(user.skills),
            "hourly_rate": bool(user.seller.get("hourly_rate")),
            "photo": bool(user.seller.get("photo_file_id")),
            "experience": bool(user.experience),
            "portfolio": bool(user.portfolio),
        }
        result["seller"] = _score(checks)
    return result


def _score(checks: dict[str, bool]) -> dict[str, Any]:
    done = sum(checks.values())
    return {
        "percent": round(100 * done / len(checks)),
        "missing": [name for name, ok in checks.items() if not ok],
    }
