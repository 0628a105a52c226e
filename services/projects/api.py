"""The projects service's published API: request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.projects.events import BUDGET_TYPES, STATUSES
from shared.api import CURRENCY, SkillCount, Strict
from shared.money import MAX_AMOUNT
from shared.pagination import PageQuery

AMOUNT = validate.Range(min=1, max=MAX_AMOUNT)
AMOUNT_OR_ZERO = validate.Range(min=0, max=MAX_AMOUNT)
SORTS = ("relevance", "newest", "budget", "deadline")


class BudgetRequest(Strict):
    type = fields.String(required=True, validate=validate.OneOf(BUDGET_TYPES))
    currency = fields.String(required=True, validate=CURRENCY)
    amount = fields.Integer(strict=True, validate=AMOUNT)
    min_rate = fields.Integer(strict=True, validate=AMOUNT)
    max_rate = fields.Integer(strict=True, validate=AMOUNT)


_TEXT = validate.Length(min=1, max=200)
_LONG = validate.Length(max=20_000)


class PostProjectRequest(Strict):
    title = fields.String(required=True, validate=validate.Length(min=5, max=200))
    description = fields.String(required=True, validate=validate.Length(min=20, max=20_000))
    scope = fields.String(load_default="", validate=_LONG)
    objectives = fields.List(
        fields.String(validate=_TEXT), load_default=list, validate=validate.Length(max=20)
    )
    budget = fields.Nested(BudgetRequest, required=True)
    deadline = fields.Date(required=True)
    skills = fields.List(
        fields.String(validate=validate.Length(max=100)),
        load_default=list,
        validate=validate.Length(max=30),
    )
    attachment_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=20))


class EditProjectRequest(Strict):
    title = fields.String(validate=validate.Length(min=5, max=200))
    description = fields.String(validate=validate.Length(min=20, max=20_000))
    scope = fields.String(validate=_LONG)
    objectives = fields.List(fields.String(validate=_TEXT), validate=validate.Length(max=20))
    budget = fields.Nested(BudgetRequest)
    deadline = fields.Date()
    skills = fields.List(
        fields.String(validate=validate.Length(max=100)), validate=validate.Length(max=30)
    )
    attachment_ids = fields.List(fields.UUID(), validate=validate.Length(max=20))


class BudgetResponse(Schema):
    type = fields.String(required=True)
    currency = fields.String(required=True)
    amount = fields.Integer(allow_none=True, metadata={"description": "fixed budgets"})
    min_rate = fields.Integer(allow_none=True, metadata={"description": "hourly budgets"})
    max_rate = fields.Integer(allow_none=True, metadata={"description": "hourly budgets"})


class ProjectResponse(Schema):
    project_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    scope = fields.String()
    objectives = fields.List(fields.String())
    budget = fields.Nested(BudgetResponse, required=True)
    deadline = fields.String(required=True)
    skills = fields.List(fields.String())
    attachment_ids = fields.List(fields.String())
    posted_at = fields.String()
    updated_at = fields.String()


class FieldChange(Schema):
    from_ = fields.Raw(
        data_key="from",
        attribute="from",
        allow_none=True,
        metadata={"description": "null in the first version"},
    )
    to = fields.Raw(allow_none=True)


class ProjectVersionResponse(Schema):
    version = fields.Integer(required=True)
    changes = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(FieldChange),
        required=True,
        metadata={"description": "Each field this version changed, before and after."},
    )
    at = fields.String(required=True)


class ProjectVersionList(Schema):
    items = fields.List(fields.Nested(ProjectVersionResponse), required=True)


class ProjectSearchPage(Schema):
    items = fields.List(fields.Nested(ProjectResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    total = fields.Integer(required=True)
    skill_counts = fields.List(fields.Nested(SkillCount), required=True)


class SearchQuery(Strict):
    """Browse and search. ``skills`` is comma-separated."""

    q = fields.String(load_default=None, validate=validate.Length(max=200))
    skills = fields.String(load_default=None, validate=validate.Length(max=1000))
    skills_mode = fields.String(load_default="any", validate=validate.OneOf(("any", "all")))
    budget_type = fields.String(load_default=None, validate=validate.OneOf(BUDGET_TYPES))
    budget_min = fields.Integer(load_default=None, validate=AMOUNT_OR_ZERO)
    budget_max = fields.Integer(load_default=None, validate=AMOUNT_OR_ZERO)
    currency = fields.String(load_default=None, validate=CURRENCY)
    deadline_before = fields.Date(load_default=None)
    deadline_after = fields.Date(load_default=None)
    posted_since = fields.DateTime(load_default=None)
    status = fields.String(load_default="open", validate=validate.OneOf(STATUSES))
    sort = fields.String(load_default=None, validate=validate.OneOf(SORTS))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class AlertRequest(Strict):
    name = fields.String(load_default="", validate=validate.Length(max=100))
    keywords = fields.String(load_default="", validate=validate.Length(max=200))
    skills = fields.List(
        fields.String(validate=validate.Length(max=100)),
        load_default=list,
        validate=validate.Length(max=30),
    )
    skills_mode = fields.String(load_default="any", validate=validate.OneOf(("any", "all")))
    budget_type = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(BUDGET_TYPES)
    )
    budget_min = fields.Integer(load_default=None, allow_none=True, validate=AMOUNT_OR_ZERO)
    budget_max = fields.Integer(load_default=None, allow_none=True, validate=AMOUNT_OR_ZERO)
    currency = fields.String(load_default=None, allow_none=True, validate=CURRENCY)
    deadline_before = fields.Date(load_default=None, allow_none=True)
    deadline_after = fields.Date(load_default=None, allow_none=True)


class AlertResponse(Schema):
    alert_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    name = fields.String()
    keywords = fields.String()
    skills = fields.List(fields.String())
    skills_mode = fields.String()
    budget_type = fields.String(allow_none=True)
    budget_min = fields.Integer(allow_none=True)
    budget_max = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    deadline_before = fields.String(allow_none=True)
    deadline_after = fields.String(allow_none=True)


class AlertList(Schema):
    items = fields.List(fields.Nested(AlertResponse), required=True)


class AlertMatchResponse(Schema):
    alert_id = fields.String(required=True)
    project_id = fields.String(required=True)
    title = fields.String(required=True)
    matched_keywords = fields.List(fields.String())
    matched_skills = fields.List(fields.String())
    matched_at = fields.String(required=True)


class MyProjectsQuery(PageQuery):
    """A buyer's own projects: every status, or one."""

    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


class AlertMatchPage(Schema):
    items = fields.List(fields.Nested(AlertMatchResponse), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
