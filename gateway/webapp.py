"""The web app (``web/``, built into ``web/dist``) on the API's own origin.

A path no API route takes is the app's: a built file when one has that name,
otherwise ``index.html``, so the app's own addresses (``/projects/42``, the
mails' ``/verify-email?token=...``) load it and its router takes over. Paths
under ``/api/`` stay the API's, and ``/metrics`` the operators': an unknown
one is a problem document, never the page.
"""

from __future__ import annotations

from pathlib import Path

from werkzeug.exceptions import NotFound
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

APP_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The app loads only its own scripts and styles, talks only to its origin,
and no other site may frame it."""

NOT_THE_APPS = ("/api/", "/health/", "/docs/", "/metrics")
"""What the app never answers, whatever the router says: the API's and the
operators' paths (``/metrics`` is on the internal port only)."""


class WebApp:
    def __init__(self, dist: Path) -> None:
        self.dist = dist

    def answer(self, request: Request) -> Response | None:
        """The app's answer to a GET the router did not take, or None when the
        path is the API's or the app is not built."""
        if request.method not in ("GET", "HEAD") or request.path.startswith(NOT_THE_APPS):
            return None
        index = self.dist / "index.html"
        if not index.is_file():
            return None
        name = request.path.lstrip("/")
        response = None
        if name and not name.endswith("/"):
            try:
                response = send_from_directory(self.dist, name, request.environ)
            except NotFound:
                response = None
        if response is not None and name.startswith("assets/"):
            # Vite names every asset by its content's hash: it never changes.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        if response is None:
            response = send_from_directory(self.dist, "index.html", request.environ)
            response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = APP_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
