"""Projects' rules as pure functions (no I/O; clocks and ids come in)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from services.projects.events import CONTENT_FIELDS, budget_range, words
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView
from shared.skills import normalize_skills

EventSpec = tuple[str, dict[str, Any]]


def project_stream(project_id: str) -> str:
    return f"project-{project_id}"


def alert_stream(alert_id: str) -> str:
    return f"alert-{alert_id}"


@dataclass(frozen=True)
class Project:
    project_id: str = ""
    buyer_id: str = ""
    status: str = ""
    version: int = 0
    content: dict[str, Any] = field(default_factory=dict)
    last_activity: datetime | None = None
    awarded_to: str = ""
    refused: frozenset[str] = frozenset()
    """Contracts whose award this project refused (it was no longer open)."""

    @property
    def exists(self) -> bool:
        return bool(self.project_id)


def evolve(state: Project, event: EventView) -> Project:
    data = event.data
    at = event.recorded_at
    match event.type:
        case "ProjectPosted":
            content = {k: data[k] for k in CONTENT_FIELDS if k in data}
            return Project(data["project_id"], data["buyer_id"], "open", 1, content, at)
        case "ProjectEdited":
            changes = {k: v for k, v in data.items() if k in CONTENT_FIELDS}
            return replace(
                state,
                version=data["version"],
                content={**state.content, **changes},
                last_activity=at,
            )
        case "ProjectClosed":
            return replace(state, status="closed")
        case "ProjectCancelled":
            return replace(state, status="cancelled")
        case "ProjectExpired":
            return replace(state, status="expired")
        case "ProjectAwarded":
            return replace(state, status="awarded", awarded_to=data["contract_id"])
        case "ProjectAwardRefused":
            return replace(state, refused=state.refused | {data["contract_id"]})
    return state


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(message, {"fields": {field_name: [message]}})


def check_budget(budget: dict[str, Any]) -> dict[str, Any]:
    """Fixed budgets need an amount; hourly ones a min <= max rate; all positive."""
    if budget["type"] == "fixed":
        if not budget.get("amount"):
            raise _invalid("budget", "A fixed budget needs an amount above zero.")
        return {"type": "fixed", "currency": budget["currency"], "amount": budget["amount"]}
    low, high = budget.get("min_rate"), budget.get("max_rate")
    if not low or not high:
        raise _invalid("budget", "An hourly budget needs min_rate and max_rate above zero.")
    if low > high:
        raise _invalid("budget", "min_rate cannot be above max_rate.")
    return {"type": "hourly", "currency": budget["currency"], "min_rate": low, "max_rate": high}


def check_content(content: dict[str, Any], today: date) -> dict[str, Any]:
    checked = dict(content)
    if "budget" in checked:
        checked["budget"] = check_budget(checked["budget"])
    if "deadline" in checked and checked["deadline"] <= today:
        raise _invalid("deadline", "The deadline must be in the future.")
    if "skills" in checked:
        try:
            checked["skills"] = normalize_skills(checked["skills"])
        except ValueError as exc:
            raise _invalid("skills", str(exc)) from exc
    return checked


def post(
    state: Project, project_id: str, buyer_id: str, content: dict[str, Any], today: date
) -> list[EventSpec]:
    if state.exists:
        raise Conflict("this project exists already")
    checked = check_content(content, today)
    return [("ProjectPosted", {"project_id": project_id, "buyer_id": buyer_id, **checked})]


def _owned_open(state: Project, actor: str) -> Project:
    if not state.exists:
        raise NotFound("no such project")
    if state.buyer_id != actor:
        raise Forbidden("only the project's buyer may change it")
    if state.status != "open":
        raise Conflict(
            f"the project is {state.status}", {"reason": "not_open", "state": state.status}
        )
    return state


def edit(state: Project, actor: str, changes: dict[str, Any], today: date) -> list[EventSpec]:
    _owned_open(state, actor)
    checked = check_content(changes, today)
    changed = {k: v for k, v in checked.items() if state.content.get(k) != v}
    if not changed:
        return []
    return [("ProjectEdited", {"version": state.version + 1, **changed})]


def close(state: Project, actor: str, reason: str) -> list[EventSpec]:
    _owned_open(state, actor)
    return [("ProjectClosed", {"reason": reason})]


def cancel(state: Project, actor: str, reason: str) -> list[EventSpec]:
    _owned_open(state, actor)
    return [("ProjectCancelled", {"reason": reason})]


def expire(state: Project, now: datetime, idle: timedelta) -> list[EventSpec]:
    """Only an open project whose buyer did nothing for ``idle`` expires."""
    if state.status != "open" or state.last_activity is None or now - state.last_activity < idle:
        return []
    return [("ProjectExpired", {"idle_days": idle.days})]


def award(state: Project, contract_id: str, seller_id: str) -> list[EventSpec]:
    """A started contract awards an open project. Contracts checks that the
    project is open when the offer is accepted, but from what it learned of
    the project, which can lag: so the project, the owner of that truth,
    checks again and refuses an award it can no longer take (closed,
    cancelled, expired, or awarded to another contract), and contracts
    cancels the contract on hearing so. Redeliveries record nothing more."""
    if not state.exists or contract_id == state.awarded_to or contract_id in state.refused:
        return []
    if state.status == "open":
        return [("ProjectAwarded", {"contract_id": contract_id, "seller_id": seller_id})]
    refused = {"contract_id": contract_id, "seller_id": seller_id, "status": state.status}
    return [("ProjectAwardRefused", refused)]


# -- keyword alerts -------------------------------------------------------------


def match_alert(criteria: dict[str, Any], project: dict[str, Any]) -> dict[str, list[str]] | None:
    """What of a saved search a newly posted project matches, or None.

    Every keyword must begin a word of the title, description or scope
    ("develop" matches "developers"); skills match any or all as asked; the
    budget must overlap the range, of the same type and currency if given.
    """
    text = words(
        " ".join(
            [project.get("title", ""), project.get("description", ""), project.get("scope", "")]
        )
    )
    keywords = words(criteria.get("keywords") or "")
    matched_keywords = [k for k in keywords if any(w.startswith(k) for w in text)]
    if len(matched_keywords) != len(keywords):
        return None
    wanted = set(criteria.get("skills") or [])
    have = set(project.get("skills") or [])
    matched_skills = sorted(wanted & have)
    if wanted and (not matched_skills or (criteria.get("skills_mode") == "all" and wanted - have)):
        return None
    budget = project["budget"]
    if criteria.get("budget_type") and criteria["budget_type"] != budget["type"]:
        return None
    if criteria.get("currency") and criteria["currency"] != budget["currency"]:
        return None
    low, high = budget_range(budget)
    if criteria.get("budget_min") is not None and high < criteria["budget_min"]:
        return None
    if criteria.get("budget_max") is not None and low > criteria["budget_max"]:
        return None
    deadline = project["deadline"]
    if criteria.get("deadline_before") and deadline > criteria["deadline_before"]:
        return None
    if criteria.get("deadline_after") and deadline < criteria["deadline_after"]:
        return None
    return {"keywords": matched_keywords, "skills": matched_skills}
