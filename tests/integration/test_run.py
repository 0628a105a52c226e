"""`make run`'s launcher: every process starts, the gateway becomes ready, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared.testing import free_port
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "n0t-in-any-log"  # pragma: allowlist secret

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_launcher_starts_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path, amqp_uri: str):
    port, internal = free_port(), free_port()
    env = dict(
        os.environ,
        VAR_DIR=str(tmp_path),
        GATEWAY_PORT=str(port),
        GATEWAY_INTERNAL_ADDRESS=f"127.0.0.1:{internal}",
        AMQP_URI=amqp_uri,
    )
    for key in ("EVENT_STORE_URL", "RELAY_CHECKPOINT_URL"):
        env.pop(key, None)
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{internal}/health/services"

    def healthy() -> dict | None:
        try:
            response = requests.get(url, timeout=10)
        except requests.ConnectionError:
            return None
        return response.json() if response.status_code == 200 else None

    try:
        body = wait_until(healthy, timeout=90, interval=0.5, what="every service healthy")
        assert body["status"] == "ok"
        ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
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
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            launcher.wait(timeout=30)
        finally:
            if group_alive(launcher.pid):
                os.killpg(launcher.pid, signal.SIGKILL)
    output = log_path.read_text()
    deadline = time.monotonic() + 10
    while group_alive(launcher.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(launcher.pid), "processes left running after Ctrl-C:\n" + output
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
