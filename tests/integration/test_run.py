"""`make run`'s launcher: every process starts, the gateway becomes ready, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from shared.testing import free_port
from tests.integration.helpers import wait_until
from tests.integration.launcher import BIN, group_alive, marketplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "n0t-in-any-log"  # pragma: allowlist secret


def test_launcher_starts_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path, amqp_uri: str):
    with marketplace(tmp_path, amqp_uri) as running:
        body = running.health()
        assert body is not None and body["status"] == "ok"
        ready = requests.get(f"{running.url}/health/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert set(body["components"]) == {
            "gateway",
            "identity",
            "projects",
            "bidding",
            "contracts",
            "escrow",
            "messaging",
            "reputation",
        }
        assert (tmp_path / "eventstore.sqlite").exists(), "not on the embedded default store"
        output = running.stop()
    assert not group_alive(running.process.pid), "processes left running after Ctrl-C:\n" + output
    assert "Traceback" not in output, output


def test_a_service_without_rabbitmq_says_how_to_start_it_and_never_logs_the_password(
    tmp_path: Path,
):
    env = dict(
        os.environ,
        VAR_DIR=str(tmp_path),
        AMQP_URI=f"amqp://identity:{PASSWORD}@127.0.0.1:{free_port()}/",
    )
    result = subprocess.run(
        [str(BIN / "marketplace-service"), "identity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "RabbitMQ is not reachable" in result.stderr
    assert "rabbitmq-server -detached" in result.stderr
    assert "amqp://identity:***@127.0.0.1" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_the_relay_waiting_for_rabbitmq_never_logs_the_password(tmp_path: Path):
    env = dict(
        os.environ,
        VAR_DIR=str(tmp_path),
        AMQP_URI=f"amqp://relay:{PASSWORD}@127.0.0.1:{free_port()}/",
        HEALTH_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    for key in ("EVENT_STORE_URL", "RELAY_CHECKPOINT_URL"):
        env.pop(key, None)
    log_path = tmp_path / "relay.log"
    with log_path.open("w") as log:
        relay = subprocess.Popen(
            [str(BIN / "marketplace-relay")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "RabbitMQ is not reachable yet" in log_path.read_text(),
            timeout=60,
            what="the relay to report the broker unreachable",
        )
    finally:
        os.killpg(relay.pid, signal.SIGTERM)
        relay.wait(timeout=30)
    output = log_path.read_text()
    assert "amqp://relay:***@127.0.0.1" in output
    assert PASSWORD not in output
