"""`make run`'s launcher (honcho over the Procfile) started as a test's own
marketplace: its own VAR_DIR, ports, vhost and mail catcher, on the embedded
event store, stopped with Ctrl-C's signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.testing import free_port
from tests.integration.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Marketplace:
    process: subprocess.Popen[bytes]
    var_dir: Path
    log_path: Path
    url: str
    internal_url: str
    env: dict[str, str]
    """What its processes run with: an operator's command given it reaches the same stores."""

    def health(self) -> dict | None:
        try:
            response = requests.get(f"{self.internal_url}/health/services", timeout=10)
        except requests.ConnectionError:
            return None
        return response.json() if response.status_code == 200 else None

    def stop(self) -> str:
        """Ctrl-C, as in a terminal; returns everything the processes printed."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        finally:
            if group_alive(self.process.pid):
                os.killpg(self.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.log_path.read_text()


@contextmanager
def marketplace(var_dir: Path, amqp_uri: str, ready_timeout: float = 90) -> Iterator[Marketplace]:
    port, internal = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        VAR_DIR=str(var_dir),
        GATEWAY_PORT=str(port),
        GATEWAY_INTERNAL_ADDRESS=f"127.0.0.1:{internal}",
        AMQP_URI=amqp_uri,
        APP_URL=url,  # the mails' links open this marketplace's web app
        SMTP_URL=f"smtp://127.0.0.1:{free_port()}",  # the Procfile's mail catcher
    )
    for key in ("EVENT_STORE_URL", "RELAY_CHECKPOINT_URL"):
        env.pop(key, None)
    log_path = var_dir / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Marketplace(process, var_dir, log_path, url, f"http://127.0.0.1:{internal}", env)
    try:
        wait_until(
            running.health, timeout=ready_timeout, interval=0.5, what="every service healthy"
        )
        yield running
    finally:
        if group_alive(process.pid):
            running.stop()
