"""Health endpoints over HTTP, for Kubernetes probes and operators.

Every service answers ``GET /health/live`` and ``GET /health/ready`` on
``HEALTH_ADDRESS`` (default: an ephemeral port on localhost, so that services
on one machine never collide; the Kubernetes manifests set ``0.0.0.0:8080``).
The gateway's own API server is separate (``WEB_SERVER_ADDRESS``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, parse_address

HEALTH_ADDRESS_KEY = "HEALTH_ADDRESS"
DEFAULT_HEALTH_ADDRESS = "127.0.0.1:0"


class HealthServer(WebServer):  # type: ignore[misc]  # nameko is untyped: Any
    """Nameko's web server, bound to ``HEALTH_ADDRESS`` rather than ``WEB_SERVER_ADDRESS``."""

    @property
    def bind_addr(self) -> Any:
        return parse_address(self.container.config.get(HEALTH_ADDRESS_KEY, DEFAULT_HEALTH_ADDRESS))


class HealthEndpoint(HttpRequestHandler):  # type: ignore[misc]  # nameko is untyped: Any
    server = HealthServer()


health_http: Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]] = (
    HealthEndpoint.decorator
)


def health_response_body(checks: dict[str, str], service: str) -> tuple[int, dict[str, Any]]:
    healthy = all(value == "ok" for value in checks.values())
    body = {"service": service, "status": "ok" if healthy else "failing", "checks": checks}
    return (200 if healthy else 503), body


def serve_health(
    address: str, ready: Callable[[], dict[str, str]], name: str
) -> ThreadingHTTPServer:
    """A small HTTP health server in a thread, for processes that are not
    Nameko services (the relay)."""
    host, port = address.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: dict[str, Any]
            if self.path == "/health/live":
                status, body = 200, {"service": name, "status": "ok"}
            elif self.path == "/health/ready":
                status, body = health_response_body(ready(), name)
            else:
                status, body = 404, {"status": 404, "code": "not_found", "title": "Not found"}
            payload = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass  # probes every few seconds would drown the logs

    server = ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server
