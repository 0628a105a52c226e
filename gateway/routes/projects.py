"""Projects routes: posting and editing projects, browsing and searching them,
and sellers' keyword alerts."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.endpoint import endpoint
from gateway.routes.base import RoutesBase
from services.projects import api as projects_api
from services.projects import views as projects_views
from shared.api import ReasonRequest
from shared.jsonready import json_ready
from shared.pagination import PageQuery, page_schema


class ProjectsRoutes(RoutesBase):
    """Buyers post projects, anyone browses them; sellers keep keyword alerts."""

    # -- projects --------------------------------------------------------------

    @endpoint(
        "POST",
        "/projects",
        summary="Post a project",
        tags=("projects",),
        body=projects_api.PostProjectRequest,
        response=projects_api.ProjectResponse,
        status=201,
        location="/projects/{project_id}",
        errors=(403,),
        role="buyer",
        verified=True,
        reads=("profiles", "project_views"),
    )
    def post_project(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._own_files(body["attachment_ids"], "project", "attachment_ids")
        posted = self.projects.post_project(json_ready(body))
        project_id = str(posted["project_id"])
        self._shown(self.project_views, lambda c: projects_views.get_project(c, project_id))
        return posted

    @endpoint(
        "GET",
        "/projects",
        summary="Browse and search projects",
        tags=("projects",),
        auth="optional",
        query=projects_api.SearchQuery,
        response=projects_api.ProjectSearchPage,
        cached=True,
        reads=("project_views",),
        retired_by=projects_views.search_retired_by,
    )
    def search_projects(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            return projects_views.search(conn, query)

    @endpoint(
        "GET",
        "/projects/<project_id>",
        summary="A project",
        tags=("projects",),
        auth="optional",
        response=projects_api.ProjectResponse,
        errors=(404,),
        cached=True,
        reads=("project_views",),
    )
    def get_project(self, request: Request, project_id: str) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            return projects_views.get_project(conn, project_id)

    @endpoint(
        "GET",
        "/me/projects",
        summary="Your projects, newest first: in every status, or in one",
        tags=("projects",),
        query=projects_api.MyProjectsQuery,
        response=page_schema(projects_api.ProjectResponse),
        reads=("project_views",),
    )
    def my_projects(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            return projects_views.list_buyer_projects(
                conn,
                self.scope.principal.user_id,
                query["status"],
                query["limit"],
                query["cursor"],
            )

    @endpoint(
        "GET",
        "/projects/<project_id>/versions",
        summary="Every version of a project, with what each changed",
        tags=("projects",),
        auth="optional",
        response=projects_api.ProjectVersionList,
        errors=(404,),
        cached=True,
        reads=("project_views",),
    )
    def project_versions(self, request: Request, project_id: str) -> dict[str, Any]:
        with self.project_views.connect() as conn:
            return {"items": projects_views.list_versions(conn, project_id)}

    @endpoint(
        "PATCH",
        "/projects/<project_id>",
        summary="Edit your open project (a new version)",
        tags=("projects",),
        body=projects_api.EditProjectRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
        reads=("profiles",),
    )
    def edit_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._own_files(body.get("attachment_ids") or [], "project", "attachment_ids")
        return self.projects.edit_project(project_id, json_ready(body))

    @endpoint(
        "POST",
        "/projects/<project_id>/close",
        summary="Close your project to proposals",
        tags=("projects",),
        body=ReasonRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
        reads=("project_views",),
    )
    def close_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        closed = self.projects.close_project(project_id, body["reason"])
        self._shown_status(project_id, closed["status"])
        return closed

    @endpoint(
        "POST",
        "/projects/<project_id>/cancel",
        summary="Cancel your project",
        tags=("projects",),
        body=ReasonRequest,
        response=projects_api.ProjectResponse,
        errors=(404, 409),
        reads=("project_views",),
    )
    def cancel_project(
        self, request: Request, project_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        cancelled = self.projects.cancel_project(project_id, body["reason"])
        self._shown_status(project_id, cancelled["status"])
        return cancelled

    def _shown_status(self, project_id: str, status: str) -> None:
        self._shown(
            self.project_views,
            lambda conn: projects_views.get_project(conn, project_id),
            lambda project: project["status"] == status,
        )

    # -- keyword alerts --------------------------------------------------------

    @endpoint(
        "POST",
        "/alerts",
        summary="Save a search as a keyword alert",
        tags=("alerts",),
        body=projects_api.AlertRequest,
        response=projects_api.AlertResponse,
        status=201,
        location="/alerts",
        role="seller",
    )
    def save_alert(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.projects.save_alert(json_ready(body))

    @endpoint(
        "GET",
        "/alerts",
        summary="Your keyword alerts",
        tags=("alerts",),
        response=projects_api.AlertList,
        reads=("project_views",),
    )
    def list_alerts(self, request: Request) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            return {"items": projects_views.list_alerts(conn, self.scope.principal.user_id)}

    @endpoint(
        "DELETE",
        "/alerts/<alert_id>",
        summary="Delete a keyword alert",
        tags=("alerts",),
        status=204,
        errors=(404,),
    )
    def delete_alert(self, request: Request, alert_id: str) -> None:
        self.projects.delete_alert(alert_id)

    @endpoint(
        "GET",
        "/alerts/matches",
        summary="Projects your alerts matched, newest first",
        tags=("alerts",),
        query=PageQuery,
        response=projects_api.AlertMatchPage,
        reads=("project_views",),
    )
    def alert_matches(self, request: Request, query: dict[str, Any]) -> dict[str, Any]:
        assert self.scope.principal is not None
        with self.project_views.connect() as conn:
            return projects_views.list_matches(
                conn, self.scope.principal.user_id, query["limit"], query["cursor"]
            )
