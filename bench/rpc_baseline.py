"""Baseline services for the benchmarks: a bare Nameko ``@http`` handler, one
that makes a single RPC, and one that makes a single RPC which appends one
event (the architecture's floor for a write), with the services they call.

    rpc_baseline.py http AMQP_URI PORT             the @http handlers
    rpc_baseline.py echo AMQP_URI [EVENT_STORE]    the echo and the writer
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from datetime import date  # noqa: E402
from typing import Any  # noqa: E402

from nameko.cli.run import run  # noqa: E402
from nameko.dependency_providers import Config  # noqa: E402
from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.web.handlers import http  # noqa: E402

from shared.eventstore import EventMetadata, StreamState  # noqa: E402
from shared.eventstore.sql import SqlEventStore  # noqa: E402
from shared.schemas import load_all_event_schemas, registry  # noqa: E402

_stores: dict[str, SqlEventStore] = {}


class Echo:
    name = "bench_echo"

    @rpc
    def ping(self) -> str:
        return "pong"


class Writer:
    """Appends one ``ProjectPosted`` to a new stream, with optimistic
    concurrency, as the projects service does: no checks, no read model."""

    name = "bench_writer"
    config = Config()

    @rpc
    def post_project(self, body: dict[str, Any]) -> str:
        url = self.config["EVENT_STORE_URL"]
        store = _stores.get(url) or _stores.setdefault(url, SqlEventStore(url))
        project_id, buyer = str(uuid.uuid4()), str(uuid.uuid4())
        data = {
            **body,
            "project_id": project_id,
            "buyer_id": buyer,
            "deadline": date.fromisoformat(body["deadline"]),
        }
        event = registry.new_event("ProjectPosted", data, EventMetadata.root(buyer, source="bench"))
        store.append(f"project-{project_id}", [event], StreamState.NO_STREAM)
        return project_id


class Baseline:
    name = "bench_http"
    echo = RpcProxy("bench_echo")
    writer = RpcProxy("bench_writer")

    @http("GET", "/bare")
    def bare(self, request: object) -> str:
        return "ok"

    @http("GET", "/rpc")
    def one_rpc(self, request: object) -> str:
        return self.echo.ping()

    @http("POST", "/projects")
    def write(self, request: Any) -> tuple[int, str]:
        project_id = self.writer.post_project(json.loads(request.get_data()))
        return 201, json.dumps({"project_id": project_id})


if __name__ == "__main__":
    which, amqp_uri = sys.argv[1], sys.argv[2]
    config = {"AMQP_URI": amqp_uri}
    if which == "http":
        config["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{sys.argv[3]}"
        run([Baseline], config)
    else:
        load_all_event_schemas()
        config["EVENT_STORE_URL"] = sys.argv[3] if len(sys.argv) > 3 else ""
        run([Echo, Writer], config)
