"""The projects service's own read models: what its timer and its alert
matcher need (browse and search are published in ``views``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.projects.domain import alert_stream, match_alert
from shared.eventstore import EventMetadata, EventStore, NewEvent, StreamState
from shared.jsonready import json_ready
from shared.projection import Projection
from shared.schemas import PublishedEvent, registry

metadata = sa.MetaData()
activity = sa.Table(
    "project_activity",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("project_activity_open", "status", "last_activity_at"),
)

matcher_metadata = sa.MetaData()
active_alerts = sa.Table(
    "matcher_alerts",
    matcher_metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False),
    sa.Column("criteria", sa.JSON, nullable=False),
)

MATCH_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-4f0e-9b7a-2c5d8e1f4a63")


class ProjectActivity(Projection):
    """Open projects and when their buyer last touched them (for expiry)."""

    name = "project_activity"
    metadata = metadata
    categories = ("project",)
    event_types = (
        "ProjectPosted",
        "ProjectEdited",
        "ProjectClosed",
        "ProjectCancelled",
        "ProjectExpired",
        "ProjectAwarded",
    )

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        project_id = event.subject
        at = event.recorded_at
        if event.type == "ProjectPosted":
            conn.execute(
                activity.insert().values(project_id=project_id, status="open", last_activity_at=at)
            )
        elif event.type == "ProjectEdited":
            conn.execute(
                activity.update()
                .where(activity.c.project_id == project_id)
                .values(last_activity_at=at)
            )
        else:
            status = event.type.removeprefix("Project").lower()
            conn.execute(
                activity.update().where(activity.c.project_id == project_id).values(status=status)
            )


def _criteria(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        k: date.fromisoformat(v) if k.startswith("deadline_") and v else v
        for k, v in stored.items()
    }


class AlertMatcher(Projection):
    """Matches every newly posted project against the saved alerts, in log order.

    Alerts and projects are read from the one log in the order they happened,
    so an alert matches exactly the projects posted after it was saved. Each
    match is recorded as ``KeywordAlertMatched`` in the alert's stream, with an
    event id derived from (alert, project): replaying the log after a crash
    appends nothing twice.
    """

    name = "alert_matcher"
    metadata = matcher_metadata
    categories = ("project", "alert")
    event_types = ("ProjectPosted", "KeywordAlertSaved", "KeywordAlertDeleted")

    def attach(self, store: EventStore) -> None:
        self.store = store

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        data = event.data
        if event.type == "KeywordAlertSaved":
            criteria = {k: v for k, v in data.items() if k not in ("alert_id", "seller_id", "name")}
            conn.execute(
                active_alerts.insert().values(
                    alert_id=data["alert_id"],
                    seller_id=data["seller_id"],
                    criteria=json_ready(criteria),
                )
            )
        elif event.type == "KeywordAlertDeleted":
            conn.execute(active_alerts.delete().where(active_alerts.c.alert_id == data["alert_id"]))
        elif event.type == "ProjectPosted":
            for alert in conn.execute(sa.select(active_alerts)).all():
                if alert.seller_id == data["buyer_id"]:
                    continue
                matched = match_alert(_criteria(alert.criteria), data)
                if matched is not None:
                    self._record(event, alert, matched)

    def _record(self, cause: PublishedEvent, alert: Any, matched: dict[str, list[str]]) -> None:
        project_id = cause.data["project_id"]
        payload = {
            "alert_id": alert.alert_id,
            "seller_id": alert.seller_id,
            "project_id": project_id,
            "title": cause.data["title"],
            "matched_keywords": matched["keywords"],
            "matched_skills": matched["skills"],
        }
        version, data = registry.encode("KeywordAlertMatched", payload)
        metadata = EventMetadata(
            correlation_id=cause.metadata.correlation_id,
            causation_id=str(cause.event_id),
            actor_id="system:projects",
            source="projects",
        )
        event_id = uuid.uuid5(MATCH_NAMESPACE, f"{alert.alert_id}:{project_id}")
        new = NewEvent("KeywordAlertMatched", data, metadata, version, event_id)
        self.store.append(alert_stream(alert.alert_id), [new], StreamState.ANY)
