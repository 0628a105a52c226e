"""The projects service: posting, editing, closing and expiring projects, and
sellers' keyword alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.timer import timer

from services.projects import api, domain
from services.projects.domain import Project
from services.projects.readmodel import AlertMatcher, ProjectActivity, activity
from shared.config import settings
from shared.consumer import decode_message, event_handler
from shared.errors import Forbidden, NotFound
from shared.eventstore import StreamState
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import load

log = get_logger(__name__)


def project_view(state: Project) -> dict[str, Any]:
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
    activity = ProjectionWorker(ProjectActivity())
    alert_matcher = ProjectionWorker(AlertMatcher())

    def _today(self) -> Any:
        return datetime.now(UTC).date()

    def _execute(self, project_id: str, decide: Any) -> dict[str, Any]:
        state = self.event_log.command(
            domain.project_stream(project_id), domain.evolve, Project(), decide
        )
        if not state.exists:
            raise NotFound("no such project")
        return project_view(state)

    @rpc
    def post_project(self, content: dict[str, Any]) -> dict[str, Any]:
        data = load(api.PostProjectRequest(), content)
        data["attachment_ids"] = [str(a) for a in data["attachment_ids"]]
        project_id = self.event_log.new_id("project")
        events = domain.post(Project(), project_id, self.context.actor_id, data, self._today())
        stream = domain.project_stream(project_id)
        self.event_log.record(stream, events, StreamState.NO_STREAM)
        log.info("project posted", project_id=project_id)
        state, _ = self.event_log.state(stream, domain.evolve, Project())
        return project_view(state)

    @rpc
    def edit_project(self, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = load(api.EditProjectRequest(), changes)
        if "attachment_ids" in wanted:
            wanted["attachment_ids"] = [str(a) for a in wanted["attachment_ids"]]
        actor, today = self.context.actor_id, self._today()
        return self._execute(project_id, lambda state: domain.edit(state, actor, wanted, today))

    @rpc
    def close_project(self, project_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        return self._execute(project_id, lambda state: domain.close(state, actor, reason))

    @rpc
    def cancel_project(self, project_id: str, reason: str = "") -> dict[str, Any]:
        actor = self.context.actor_id
        return self._execute(project_id, lambda state: domain.cancel(state, actor, reason))

    # -- keyword alerts --------------------------------------------------------

    @rpc
    def save_alert(self, criteria: dict[str, Any]) -> dict[str, Any]:
        data = load(api.AlertRequest(), criteria)
        if data["skills"]:
            data["skills"] = domain.check_content({"skills": data["skills"]}, self._today())[
                "skills"
            ]
        alert_id = self.event_log.new_id("alert")
        alert = {"alert_id": alert_id, "seller_id": self.context.actor_id, **data}
        self.event_log.record(
            domain.alert_stream(alert_id), [("KeywordAlertSaved", alert)], StreamState.NO_STREAM
        )
        return json_ready(alert)

    @rpc
    def delete_alert(self, alert_id: str) -> dict[str, Any]:
        events, revision = self.event_log.load(domain.alert_stream(alert_id))
        saved = [e for e in events if e.type == "KeywordAlertSaved"]
        if not saved or any(e.type == "KeywordAlertDeleted" for e in events):
            raise NotFound("no such alert")
        if saved[0].data["seller_id"] != self.context.actor_id:
            raise Forbidden("this is not your alert")
        self.event_log.record(
            domain.alert_stream(alert_id),
            [("KeywordAlertDeleted", {"alert_id": alert_id})],
            revision,
        )
        return {"deleted": True}

    # -- reactions -------------------------------------------------------------

    @event_handler("contracts", "ContractStarted")
    def on_contract_started(self, payload: dict[str, Any]) -> None:
        """A started contract awards its project (at most once: an awarded
        project records nothing more, so redeliveries change nothing)."""
        data = decode_message(payload).data
        self._execute(
            data["project_id"],
            lambda state: domain.award(state, data["contract_id"], data["seller_id"]),
        )

    @timer(interval=settings().project_expiry_check_seconds)
    def expire_idle_projects(self) -> int:
        """Expire open projects whose buyer did nothing for PROJECT_IDLE_DAYS."""
        idle = timedelta(
            days=float(self.config.get("PROJECT_IDLE_DAYS", settings().project_idle_days))
        )
        now = datetime.now(UTC)
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
            self._execute(project_id, lambda state: domain.expire(state, now, idle))
        if candidates:
            log.info("expired idle projects", count=len(candidates))
        return len(candidates)
