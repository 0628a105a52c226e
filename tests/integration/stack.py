"""The whole marketplace as separate processes, for journeys and fault tests.

``Stack`` starts each line of the ``Procfile`` (the commands ``make run``
runs) as its own process group, so a test can ``kill -9`` one and start it
again. ``Client`` is a frontend that behaves as one should on a flaky
network: every POST carries an ``Idempotency-Key`` and is retried with the
same key on a connection error or a 5xx, which the test counts.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from shared.testing import free_port
from tests.integration.helpers import wait_until
from tests.integration.mail import link_token, wait_for_mail
from tests.integration.test_identity_api import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RETRYABLE = {502, 503, 504}
MAIL_DIRS: dict[str, Path] = {}
"""Where each running stack's mail catcher keeps its mails, by gateway URL."""


def procfile() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            words = shlex.split(command)
            first = next(i for i, word in enumerate(words) if "=" not in word)
            settings = words[:first]
            program, *args = words[first:]
            argv = [str(BIN / Path(program).name), *args]  # this test run's own environment
            # leading VAR=value words, as a shell (honcho) reads them; env(1) execs,
            # so the process keeps its pid (the fault tests kill it by pid)
            commands[name.strip()] = ["env", *settings, *argv] if settings else argv
    return commands


class Stack:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        # The Procfile's mail catcher on a port of its own (identity sends there).
        self.env = {**os.environ, "SMTP_URL": f"smtp://127.0.0.1:{free_port()}", **env}
        self.env.setdefault("GATEWAY_INTERNAL_ADDRESS", f"127.0.0.1:{free_port()}")
        self.commands = procfile()
        self.processes: dict[str, subprocess.Popen] = {}
        self.port = int(env["GATEWAY_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.internal_url = f"http://{self.env['GATEWAY_INTERNAL_ADDRESS']}"
        """The gateway's internal port: /metrics, and /health/services for all of it."""
        MAIL_DIRS[self.url] = Path(self.env.get("VAR_DIR", ROOT / "var")) / "mail"

    def start(self, name: str) -> None:
        log = (self.directory / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            self.commands[name],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_all(self, ready_timeout: float = 120) -> None:
        """Each process on its own, so that one can be killed alone."""
        for name in self.commands:
            self.start(name)
        self.wait_ready(ready_timeout)

    def launch(self) -> None:
        """Exactly as ``make run`` does: honcho with the Procfile."""
        log = (self.directory / "honcho.log").open("a")
        self.processes["honcho"] = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def kill(self, name: str) -> None:
        """``kill -9``: no shutdown, no cleanup."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def wait_ready(self, timeout: float = 120) -> None:
        """The gateway ready, and every service answering it (its internal health)."""

        def ready() -> bool:
            try:
                every = requests.get(f"{self.internal_url}/health/services", timeout=10)
                gateway = requests.get(f"{self.url}/health/ready", timeout=5)
            except requests.RequestException:
                return False
            return every.status_code == 200 and gateway.status_code == 200

        wait_until(ready, timeout=timeout, interval=0.5, what="every service ready")

    def cli(self, *args: str, program: str = "marketplace-events") -> subprocess.CompletedProcess:
        """One of the operators' commands, against this stack's stores."""
        return subprocess.run(
            [str(BIN / program), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def grant_admin(self, email: str) -> None:
        """What an operator runs to make a registered user an administrator."""
        done = self.cli("grant-admin", email, program="marketplace-admin")
        assert done.returncode == 0, done.stdout + done.stderr

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")


class Client:
    """One user's frontend. ``failures`` counts what the user would have seen
    go wrong before a retry succeeded, by kind."""

    def __init__(self, base: str, failures: Counter | None = None, patience: float = 120) -> None:
        self.mail_dir = MAIL_DIRS.get(base)
        self.base = f"{base}/api/v1"
        self.token: str | None = None
        self.user_id = ""
        self.email = ""
        self.failures = failures if failures is not None else Counter()
        self.patience = patience

    def request(
        self, method: str, path: str, json: Any = None, key: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "POST":
            headers.setdefault("Idempotency-Key", key or uuid.uuid4().hex)
        deadline = time.monotonic() + self.patience
        while True:
            try:
                response = requests.request(
                    method, self.base + path, json=json, headers=headers, timeout=30, **kw
                )
            except requests.RequestException as exc:
                self.failures[type(exc).__name__] += 1
            else:
                in_progress = (
                    response.status_code == 409
                    and response.headers.get("Content-Type", "").startswith("application/problem")
                    and response.json().get("reason") == "idempotency_key_in_progress"
                )
                if response.status_code not in RETRYABLE and not in_progress:
                    return response
                self.failures["409 in progress" if in_progress else str(response.status_code)] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} kept failing: {dict(self.failures)}")
            time.sleep(0.5)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def patch(self, path: str, json: Any) -> requests.Response:
        return self.request("PATCH", path, json)

    def ok(self, method: str, path: str, json: Any = None, status: int | None = None, **kw: Any):
        response = self.request(method, path, json, **kw)
        expected = (status,) if status else (200, 201, 204)
        assert response.status_code in expected, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def see(self, path: str, check: Any, timeout: float = 60, **kw: Any) -> Any:
        """Wait until a read (from the gateway's views) shows what ``check`` wants."""

        def read() -> Any:
            response = self.get(path, **kw)
            if response.status_code != 200:
                return None
            body = response.json()
            return body if check(body) else None

        return wait_until(read, timeout=timeout, interval=0.2, what=f"{self.email}: {path}")

    def sign_up(self, roles: list[str]) -> Client:
        self.email = f"{roles[0]}-{uuid.uuid4().hex[:10]}@example.com"
        self.ok(
            "POST", "/auth/register", {"email": self.email, "password": PASSWORD, "roles": roles}
        )
        self.verify_email()
        return self.log_in()

    def verify_email(self) -> None:
        """Follow the link mailed to the address, as its owner would."""
        assert self.mail_dir is not None, "no mail catcher for this stack"
        mail = wait_for_mail(self.mail_dir, self.email, "verify_email", timeout=self.patience)
        answer = self.request("POST", "/auth/verify-email", {"token": link_token(mail)})
        if answer.status_code == 400 and answer.json().get("code") == "token_used":
            # A retry whose first attempt got through, its answer lost with a
            # killed gateway: as a person clicking twice, already verified
            # (what follows posts and proposes, which only a verified account may).
            return
        assert answer.status_code == 200, f"POST /auth/verify-email: {answer.text}"

    def log_in(self) -> Client:
        self.token = None
        tokens = self.ok("POST", "/auth/login", {"email": self.email, "password": PASSWORD})
        self.token, self.user_id = tokens["access_token"], tokens["user_id"]
        return self

    def upload(self, content: bytes, purpose: str, name: str) -> dict[str, Any]:
        response = self.request(
            "POST", "/files", files={"file": (name, content)}, data={"purpose": purpose}
        )
        assert response.status_code == 201, response.text
        return response.json()
