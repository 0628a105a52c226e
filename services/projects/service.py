"""The projects service: posting, editing, closing and expiring projects, and
sellers' keyword alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.timer import timer

from services.projects import api, domain
from services.projects.domain import Project
from services.projects.readmodel import AlertMatcher, ProjectActivity, activity
from shared.attachments import FILE_FACTS, check_own_files
from shared.config import settings
from shared.consumer import decode_message, event_handler, learns
from shared.erasure import forget_person
from shared.errors import Forbidden
from shared.eventlog import Aggregate, EventSpec
from shared.facts import LearnedFacts
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.schemas import DecodedEvent
from shared.service import MarketplaceService, rpc
from shared.validation import load

log = get_logger(__name__)


def evolve_alert(state: dict[str, Any], event: DecodedEvent) -> dict[str, Any]:
    """A keyword alert: its criteria as saved, and whether it was deleted."""
    if event.type == "KeywordAlertSaved":
        return {**event.data, "deleted": False}
    if event.type == "KeywordAlertDeleted":
        return {**state, "deleted": True}
    return state


PROJECT = Aggregate("project", domain.project_stream, domain.evolve, Project, lambda p: p.exists)
ALERT = Aggregate(
    "alert", domain.alert_stream, evolve_alert, dict, lambda a: not a.get("deleted", True)
)


def project_view(state: Project) -> dict[str, Any]:
    PROJECT.require(state)
    return json_ready(
        {
            "project_id": state.project_id,
            "buyer_id": state.buyer_id,
            "status": state.status,
            "version": state.version,
            **state.content,
        }
    )


class ProjectsService(MarketplaceService):
    name = "projects"
    config = Config()
    facts = LearnedFacts()
    activity = ProjectionWorker(ProjectActivity())
    alert_matcher = ProjectionWorker(AlertMatcher())

    @learns("identity", *FILE_FACTS)
    def learn_file(self, payloads: list[dict[str, Any]]) -> None:
        """Whose files a project may attach."""
        self.facts.learn_all(payloads)

    def _attachments(self, file_ids: list[Any]) -> list[str]:
        return check_own_files(
            self.facts, self.context.actor_id, file_ids, "project", "attachment_ids"
        )

    @rpc
    def post_project(self, content: dict[str, Any]) -> dict[str, Any]:
        data = load(api.PostProjectRequest(), content)
        data["attachment_ids"] = self._attachments(data["attachment_ids"])
        project_id = self.event_log.new_id("project")
        events = domain.post(Project(), project_id, self.context.actor_id, data, self.clock.today())
        state = self.event_log.create(PROJECT, project_id, events)
        log.info("project posted", project_id=project_id)
        return project_view(state)

    @rpc
    def edit_project(self, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = load(api.EditProjectRequest(), changes)
        if "attachment_ids" in wanted:
            wanted["attachment_ids"] = self._attachments(wanted["attachment_ids"])
        actor, today = self.context.actor_id, self.clock.today()
        state = self.event_log.run(
            PROJECT, project_id, lambda s: domain.edit(s, actor, wanted, today)
        )
        return project_view(state)

    @rpc
    def close_project(self, project_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(PROJECT, project_id, lambda s: domain.close(s, actor, reason))
        return project_view(state)

    @rpc
    def cancel_project(self, project_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        state = self.event_log.run(PROJECT, project_id, lambda s: domain.cancel(s, actor, reason))
        return project_view(state)

    # -- keyword alerts --------------------------------------------------------

    @rpc
    def save_alert(self, criteria: dict[str, Any]) -> dict[str, Any]:
        data = load(api.AlertRequest(), criteria)
        if data["skills"]:
            data["skills"] = domain.check_content({"skills": data["skills"]}, self.clock.today())[
                "skills"
            ]
        alert_id = self.event_log.new_id("alert")
        alert = {"alert_id": alert_id, "seller_id": self.context.actor_id, **data}
        self.event_log.create(ALERT, alert_id, [("KeywordAlertSaved", alert)])
        return json_ready(alert)

    @rpc
    def delete_alert(self, alert_id: str) -> dict[str, Any]:
        actor = self.context.actor_id

        def delete(alert: dict[str, Any]) -> list[EventSpec]:
            if ALERT.require(alert)["seller_id"] != actor:
                raise Forbidden("this is not your alert")
            return [("KeywordAlertDeleted", {"alert_id": alert_id})]

        self.event_log.run(ALERT, alert_id, delete)
        return {"deleted": True}

    # -- reactions -------------------------------------------------------------

    @event_handler("contracts", "ContractStarted")
    def on_contract_started(self, payload: dict[str, Any]) -> None:
        """A started contract awards its project (at most once: an awarded
        project records nothing more, so redeliveries change nothing)."""
        data = decode_message(payload).data
        state = self.event_log.run(
            PROJECT,
            data["project_id"],
            lambda s: domain.award(s, data["contract_id"], data["seller_id"]),
        )
        PROJECT.require(state)

    @timer(interval=settings().project_expiry_check_seconds)
    def expire_idle_projects(self) -> int:
        """Expire open projects whose buyer did nothing for PROJECT_IDLE_DAYS."""
        idle = timedelta(
            days=float(self.config.get("PROJECT_IDLE_DAYS", settings().project_idle_days))
        )
        now = self.clock.now()
        with self.activity.connect() as conn:
            candidates = (
                conn.execute(
                    sa.select(activity.c.project_id).where(
                        activity.c.status == "open", activity.c.last_activity_at <= now - idle
                    )
                )
                .scalars()
                .all()
            )
        for project_id in candidates:
            self.event_log.run(PROJECT, project_id, lambda s: domain.expire(s, now, idle))
        if candidates:
            log.info("expired idle projects", count=len(candidates))
        return len(candidates)

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of them."""
        forget_person(payload, self.event_log, self.facts)
