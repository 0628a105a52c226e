"""The gateway's health endpoints, in a real container on a real broker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.service import GatewayService
from shared.testing import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(container_factory: Any, amqp_uri: str, tmp_path: Path) -> str:
    port = free_port()
    container = container_factory(
        GatewayService,
        {
            "AMQP_URI": amqp_uri,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite'}",
            "EVENT_STORE_URL": f"sqlite:///{tmp_path / 'nested' / 'events.sqlite'}",
            "BLOB_DIR": str(tmp_path / "blobs"),
        },
    )
    container.start()
    return f"http://127.0.0.1:{port}"


def test_live_answers_and_echoes_the_request_id(gateway: str):
    response = requests.get(f"{gateway}/health/live", headers={"X-Request-ID": "c-42"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "c-42"
    generated = requests.get(f"{gateway}/health/live").headers["X-Request-ID"]
    assert len(generated) == 36
    hostile = requests.get(f"{gateway}/health/live", headers={"X-Request-ID": "a b\tc"})
    assert hostile.headers["X-Request-ID"] != "a b\tc"


def test_ready_is_503_and_names_what_is_missing_when_services_are_down(gateway: str):
    started = time.monotonic()
    response = requests.get(f"{gateway}/health/ready", timeout=15)
    assert time.monotonic() - started < 8, "readiness must answer within its deadline"
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["components"]["escrow"]["status"] in {"failing", "unreachable"}
    assert body["components"]["gateway"]["status"] == "ok"


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
