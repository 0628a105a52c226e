"""The gateway's HTTP servers: Nameko's, except that a request no route matches
(an unknown path, a method the path does not take, a path segment the router
cannot parse) is answered with a problem document like every other error,
not werkzeug's HTML page.

Two of them: the API on ``WEB_SERVER_ADDRESS`` (``@http``), the one the
Ingress routes, and the internal one on ``GATEWAY_INTERNAL_ADDRESS``
(``@internal_http``) for what only operators and Prometheus may see."""

from __future__ import annotations

import socket
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

from gateway.http import problem
from gateway.webapp import WebApp
from shared.config import settings

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body a route takes unless it says otherwise (uploads do:
``@endpoint(max_body=...)``, checked in ``gateway.endpoint`` before anything reads)."""


class ProblemWsgiApp(WsgiApp):
    web_app: WebApp | None = None
    """What a GET no route takes is answered with (the API port only)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ, shallow=True)  # as Nameko's: see WsgiApp
        # Every route, @endpoint or not, reads at most this much of a body
        # (werkzeug answers 413 beyond it); an upload route raises it for itself.
        request.max_content_length = MAX_BODY_BYTES
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except HTTPException as exc:
            code = exc.code or 404
            page = self.web_app.answer(request) if self.web_app and code == 404 else None
            if page is not None:
                return page(environ, start_response)
            name = (exc.name or "Not Found").lower().replace(" ", "_")
            answer = problem(code, name, exc.name or "Not Found", "no such operation")
            if code == 405 and exc.get_headers(environ):
                answer.headers.update(
                    {k: v for k, v in exc.get_headers(environ) if k.lower() == "allow"}
                )
            return answer(environ, start_response)
        request.path_values = values  # type: ignore[attr-defined]  # (where nameko's handlers read them)
        return provider.handle_request(request)(environ, start_response)


class GatewayWebServer(WebServer):
    def get_wsgi_app(self) -> Any:
        """Behind ``TRUSTED_PROXY_HOPS`` proxies (the Ingress), the client's
        address is the one the nearest of them saw, from X-Forwarded-For;
        nothing a client adds further left is believed. Without proxies the
        header is ignored: anyone can send it."""
        app = ProblemWsgiApp(self)
        app.web_app = self.web_app()
        hops = int(self.container.config.get("TRUSTED_PROXY_HOPS") or settings().trusted_proxy_hops)
        return ProxyFix(app, x_for=hops, x_proto=hops) if hops else app

    def web_app(self) -> WebApp | None:
        return WebApp(settings().web_dist)

    def process_request(self, sock: Any, address: Any) -> None:
        # An answer larger than the server's write buffer leaves in two sends;
        # with Nagle's algorithm on, the second waits for the client's delayed
        # ACK (40 ms on Linux): every list of 20 projects or proposals took
        # 44 ms however fast it was made (measured in bench/marketplace.py).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(sock, address)


class ApiHandler(HttpRequestHandler):
    server = GatewayWebServer()


http = ApiHandler.decorator
"""The gateway's ``@http``: every route of the API must use this one (one
server per port)."""

INTERNAL_ADDRESS_KEY = "GATEWAY_INTERNAL_ADDRESS"
DEFAULT_INTERNAL_ADDRESS = "127.0.0.1:0"


class InternalWebServer(GatewayWebServer):
    @property
    def bind_addr(self) -> Any:
        address = self.container.config.get(INTERNAL_ADDRESS_KEY) or DEFAULT_INTERNAL_ADDRESS
        return parse_address(address)

    def web_app(self) -> WebApp | None:
        return None  # operators' port: no app


class InternalHandler(HttpRequestHandler):
    server = InternalWebServer()


internal_http = InternalHandler.decorator
"""``@http`` on the internal port: metrics and every service's health, which
the Ingress never routes."""
