"""The gateway's health endpoints, in a real container on a real broker.

Public (the API port): liveness, and readiness that depends only on what the
gateway itself needs (its database, the broker), with no reasons in the
answer. Internal (``GATEWAY_INTERNAL_ADDRESS``): metrics, and every service's
health with its reasons."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import structlog
from sqlalchemy.pool import NullPool

from gateway.service import GatewayService
from shared.testing import free_port, fresh_postgres_database
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration

SERVICES = {"identity", "projects", "bidding", "contracts", "escrow", "messaging", "reputation"}


@dataclass
class Gateway:
    url: str
    internal: str
    database: str


def start_gateway(container_factory: Any, config: dict[str, Any], tmp_path: Path) -> Gateway:
    port, internal = free_port(), free_port()
    container_factory(
        GatewayService,
        {
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "GATEWAY_INTERNAL_ADDRESS": f"127.0.0.1:{internal}",
            "EVENT_STORE_URL": f"sqlite:///{tmp_path / 'nested' / 'events.sqlite'}",
            "BLOB_DIR": str(tmp_path / "blobs"),
            **config,
        },
    ).start()
    return Gateway(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}", config["DATABASE_URL"]
    )


@pytest.fixture
def gateway(container_factory: Any, amqp_uri: str, tmp_path: Path) -> Gateway:
    """The gateway alone: no service runs."""
    database = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    return start_gateway(
        container_factory, {"AMQP_URI": amqp_uri, "DATABASE_URL": database}, tmp_path
    )


def test_live_answers_and_echoes_the_request_id(gateway: Gateway):
    response = requests.get(f"{gateway.url}/health/live", headers={"X-Request-ID": "c-42"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "c-42"
    generated = requests.get(f"{gateway.url}/health/live").headers["X-Request-ID"]
    assert len(generated) == 36
    hostile = requests.get(f"{gateway.url}/health/live", headers={"X-Request-ID": "a b\tc"})
    assert hostile.headers["X-Request-ID"] != "a b\tc"


def test_ready_needs_no_service_and_the_internal_port_names_the_missing_ones(gateway: Gateway):
    ready = requests.get(f"{gateway.url}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}

    started = time.monotonic()
    detailed = requests.get(f"{gateway.internal}/health/services", timeout=15)
    assert time.monotonic() - started < 8, "the services' health must answer within its deadline"
    assert detailed.status_code == 503
    body = detailed.json()
    assert body["status"] == "failing"
    assert set(body["components"]) == {"gateway", *SERVICES}
    assert body["components"]["gateway"]["status"] == "ok"
    for name in SERVICES:
        assert body["components"][name]["status"] == "unreachable", name
        assert body["components"][name]["reason"]
    # and none of it on the public port
    public = requests.get(f"{gateway.url}/health/services", timeout=10)
    assert public.status_code == 404
    assert public.headers["Content-Type"].startswith("application/problem+json")


def test_metrics_are_served_on_the_internal_port_only(gateway: Gateway):
    requests.get(f"{gateway.url}/api/v1/nothing-here", timeout=10)
    metrics = requests.get(f"{gateway.internal}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "gateway_http_request_duration_seconds" in metrics.text
    public = requests.get(f"{gateway.url}/metrics", timeout=10)
    assert public.status_code == 404
    assert "gateway_http" not in public.text


@pytest.fixture
def gateway_on_postgres(
    container_factory: Any, amqp_uri: str, postgres_server: str, tmp_path: Path
) -> Iterator[Gateway]:
    with fresh_postgres_database(postgres_server) as database:
        yield start_gateway(
            container_factory, {"AMQP_URI": amqp_uri, "DATABASE_URL": database}, tmp_path
        )


def set_connections_allowed(server: str, database: str, allowed: bool) -> None:
    name = sa.make_url(database).database
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
    admin.dispose()


def test_ready_fails_without_its_database_and_says_only_failing(
    gateway_on_postgres: Gateway, postgres_server: str
):
    gateway = gateway_on_postgres
    ready = f"{gateway.url}/health/ready"
    assert requests.get(ready, timeout=10).status_code == 200
    set_connections_allowed(postgres_server, gateway.database, allowed=False)
    try:
        with structlog.testing.capture_logs() as logged:
            response = requests.get(ready, timeout=10)
        assert response.status_code == 503
        # no internal error text in a public answer ...
        assert response.json() == {
            "status": "not_ready",
            "checks": {"database": "failing", "broker": "ok"},
        }
        # ... it goes to the log, and to the internal port
        (warning,) = [line for line in logged if line["event"] == "not ready"]
        assert warning["database"].startswith("(psycopg2.OperationalError)")
        assert "broker" not in warning
        detailed = requests.get(f"{gateway.internal}/health/services", timeout=15).json()
        database = detailed["components"]["gateway"]["checks"]["database"]
        assert database.startswith("failing: (psycopg2.OperationalError)")
    finally:
        set_connections_allowed(postgres_server, gateway.database, allowed=True)
    wait_until(
        lambda: requests.get(ready, timeout=10).status_code == 200,
        timeout=20,
        what="ready again once the database is back",
    )


def test_a_running_service_shows_ok_on_the_internal_port(
    container_factory: Any, amqp_uri: str, fresh_pg: str, tmp_path: Path
):
    from services.escrow.service import EscrowService

    config = {"AMQP_URI": amqp_uri, "EVENT_STORE_URL": fresh_pg, "DATABASE_URL": fresh_pg}
    container_factory(EscrowService, config).start()
    gateway = start_gateway(
        container_factory,
        {"AMQP_URI": amqp_uri, "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite'}"},
        tmp_path,
    )
    body = requests.get(f"{gateway.internal}/health/services", timeout=15).json()
    assert body["components"]["escrow"] == {
        "service": "escrow",
        "status": "ok",
        "checks": {"event_store": "ok", "database": "ok"},
    }
    assert body["components"]["identity"]["status"] == "unreachable"


def test_a_service_answers_its_http_health_probes(
    container_factory: Any, amqp_uri: str, fresh_pg: str
):
    from services.escrow.service import EscrowService

    port = free_port()
    container_factory(
        EscrowService,
        {
            "AMQP_URI": amqp_uri,
            "EVENT_STORE_URL": fresh_pg,
            "DATABASE_URL": fresh_pg,
            "HEALTH_ADDRESS": f"127.0.0.1:{port}",
        },
    ).start()
    live = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
    assert live.status_code == 200 and live.json()["service"] == "escrow"
    ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"event_store": "ok", "database": "ok", "broker": "ok"}
