"""The projects service's events: its published API.

Streams: ``project-<project_id>`` (a project's life: posted, each edit as a new
version, closed, cancelled, expired, awarded) and ``alert-<alert_id>`` (a
seller's saved search and the projects it matched).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from shared.schemas import ALL, registry
from shared.search import words as words

STREAM_CATEGORIES = ("project", "alert")
"""The categories of this service's streams: no other service reads them."""

BUDGET_TYPES = ("fixed", "hourly")
STATUSES = ("open", "closed", "cancelled", "expired", "awarded")


class BudgetSchema(Schema):
    """Fixed: ``amount``. Hourly: ``min_rate`` and ``max_rate``. Minor units."""

    type = fields.String(required=True, validate=validate.OneOf(BUDGET_TYPES))
    currency = fields.String(required=True)
    amount = fields.Integer(allow_none=True, load_default=None)
    min_rate = fields.Integer(allow_none=True, load_default=None)
    max_rate = fields.Integer(allow_none=True, load_default=None)


class ProjectContent(Schema):
    title = fields.String(required=True)
    description = fields.String(required=True)
    scope = fields.String(load_default="")
    objectives = fields.List(fields.String(), load_default=list)
    budget = fields.Nested(BudgetSchema, required=True)
    deadline = fields.Date(required=True)
    skills = fields.List(fields.String(), load_default=list)
    attachment_ids = fields.List(fields.String(), load_default=list)


CONTENT_FIELDS = tuple(ProjectContent().fields)
"""What a project's content is, and so what an edit may change."""


@registry.event("ProjectPosted", published=ALL)
class ProjectPosted(ProjectContent):
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)


@registry.event("ProjectEdited", published=ALL)
class ProjectEdited(Schema):
    """The fields that changed; the project's version is its number of edits + 1."""

    version = fields.Integer(required=True)
    title = fields.String()
    description = fields.String()
    scope = fields.String()
    objectives = fields.List(fields.String())
    budget = fields.Nested(BudgetSchema)
    deadline = fields.Date()
    skills = fields.List(fields.String())
    attachment_ids = fields.List(fields.String())


@registry.event("ProjectClosed", published=ALL)
class ProjectClosed(Schema):
    reason = fields.String(load_default="")


@registry.event("ProjectCancelled", published=ALL)
class ProjectCancelled(Schema):
    reason = fields.String(load_default="")


@registry.event("ProjectExpired", published=ALL)
class ProjectExpired(Schema):
    idle_days = fields.Integer(required=True)


@registry.event("ProjectAwarded", published=ALL)
class ProjectAwarded(Schema):
    contract_id = fields.String(required=True)
    seller_id = fields.String(required=True)


@registry.event("ProjectAwardRefused", published=ALL)
class ProjectAwardRefused(Schema):
    """A contract started on a project that was no longer open: contracts
    cancels it (see ``domain.award``)."""

    contract_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    status = fields.String(required=True)


class AlertCriteria(Schema):
    keywords = fields.String(load_default="")
    skills = fields.List(fields.String(), load_default=list)
    skills_mode = fields.String(load_default="any", validate=validate.OneOf(("any", "all")))
    budget_type = fields.String(allow_none=True, load_default=None)
    budget_min = fields.Integer(allow_none=True, load_default=None)
    budget_max = fields.Integer(allow_none=True, load_default=None)
    currency = fields.String(allow_none=True, load_default=None)
    deadline_before = fields.Date(allow_none=True, load_default=None)
    deadline_after = fields.Date(allow_none=True, load_default=None)


@registry.event("KeywordAlertSaved", published=ALL, personal={"name": "seller_id"})
class KeywordAlertSaved(AlertCriteria):
    alert_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    name = fields.String(load_default="")


@registry.event("KeywordAlertDeleted", published=ALL)
class KeywordAlertDeleted(Schema):
    alert_id = fields.String(required=True)


@registry.event("KeywordAlertMatched", published=ALL)
class KeywordAlertMatched(Schema):
    alert_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    project_id = fields.String(required=True)
    title = fields.String(required=True)
    matched_keywords = fields.List(fields.String(), required=True)
    matched_skills = fields.List(fields.String(), required=True)


# -- how the published text and budgets read (search and alerts agree on it) -----

# ``words``: how search and alerts both read text (shared with talent search).


def budget_range(budget: dict[str, Any]) -> tuple[int, int]:
    """(low, high) in minor units: a fixed amount is both ends."""
    if budget["type"] == "fixed":
        return budget["amount"], budget["amount"]
    return budget["min_rate"], budget["max_rate"]
