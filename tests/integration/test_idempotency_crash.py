"""A retried ``Idempotency-Key`` whose first attempt died with its gateway is
taken over as soon as the gateway is back.

The gateway is ``kill -9``'d while a POST waits on its service (stopped, so
the RPC waits in its queue); started again, the same request with the same key
gets its answer, not 409 "in progress". ``bench/idempotency_takeover.py`` runs
the same scenario and prints the delay (the figures before and after the key's
lock was tied to the gateway's life are in its docstring).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from shared.testing import fresh_postgres_database
from tests.integration.helpers import wait_until
from tests.integration.stack import Client, Stack
from tests.integration.test_journeys import stack_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Takeover:
    ready_to_answer: float
    """Seconds from the restarted gateway's first ready answer to the retry's answer."""
    crash_to_answer: float
    """Seconds from the kill to the retry's answer."""
    in_progress: int
    """409 "in progress" answers the retry got before its answer."""
    status: int
    body: Any
    posted: int
    """Projects the log holds with the request's title: one, whether or not the
    first attempt reached the service before its gateway died."""


def project_body() -> dict[str, Any]:
    return {
        "title": f"Crash test {uuid.uuid4().hex[:8]}",
        "description": "A project posted while its gateway is killed, then posted again.",
        "scope": "Backend",
        "objectives": ["survive a crash"],
        "budget": {"type": "fixed", "amount": 100_000, "currency": "USD"},
        "deadline": (date.today() + timedelta(days=30)).isoformat(),
        "skills": ["Python"],
    }


def first_ready(url: str, timeout: float = 120) -> float:
    """When ``/health/ready`` first answers 200 (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the gateway was not ready again within {timeout}s")


def crash_and_retry(stack: Stack, gateway_db: str, event_store: str) -> Takeover:
    """Post a project with the projects service stopped, kill the gateway while
    the request waits, start both again, and retry with the same key."""
    buyer = Client(stack.url).sign_up(["buyer"])
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {buyer.token}", "Idempotency-Key": key}
    body = project_body()
    url = f"{stack.url}/api/v1/projects"
    stack.kill("projects")

    first: dict[str, Any] = {}

    def post_first() -> None:
        try:
            first["answer"] = requests.post(url, json=body, headers=headers, timeout=120)
        except requests.RequestException as exc:
            first["error"] = exc

    attempt = threading.Thread(target=post_first, daemon=True)
    attempt.start()
    engine = sa.create_engine(gateway_db)
    try:

        def pending() -> bool:
            with engine.connect() as conn:
                state = conn.execute(
                    sa.text("SELECT state FROM idempotency_keys WHERE key = :key"), {"key": key}
                ).scalar()
            return state == "pending"

        wait_until(pending, timeout=30, interval=0.05, what="the first attempt's pending key")
    finally:
        engine.dispose()
    time.sleep(0.3)  # the RPC is on its way to the stopped service
    stack.kill("gateway")
    crashed = time.monotonic()
    attempt.join(timeout=30)
    assert "error" in first, f"the first attempt was answered: {first}"
    stack.start("projects")
    stack.start("gateway")
    ready = first_ready(stack.url)

    in_progress = 0
    while True:
        answer = requests.post(url, json=body, headers=headers, timeout=30)
        problem = answer.headers.get("Content-Type", "").startswith("application/problem")
        if not (
            answer.status_code == 409
            and problem
            and answer.json().get("reason") == "idempotency_key_in_progress"
        ):
            break
        in_progress += 1
        assert time.monotonic() - ready < 120, "the key stayed in progress"
        time.sleep(0.05)
    answered = time.monotonic()
    engine = sa.create_engine(event_store)
    with engine.connect() as conn:
        posted = conn.execute(
            sa.text(
                "SELECT count(*) FROM events"
                " WHERE event_type = 'ProjectPosted' AND data->>'title' = :title"
            ),
            {"title": body["title"]},
        ).scalar_one()
    engine.dispose()
    return Takeover(
        ready_to_answer=answered - ready,
        crash_to_answer=answered - crashed,
        in_progress=in_progress,
        status=answer.status_code,
        body=answer.json(),
        posted=posted,
    )


def crash_stack(tmp_path: Path, amqp_uri: str, event_store: str, gateway_db: str) -> Stack:
    """Every process on its own; the gateway's database is ``gateway_db``; an
    RPC waits for its stopped service longer than the test takes."""
    env = stack_env(
        tmp_path,
        amqp_uri,
        review_seconds=40,
        EVENT_STORE_URL=event_store,
        GATEWAY_DATABASE_URL=gateway_db,
        RPC_TIMEOUT="120",
    )
    return Stack(tmp_path, env)


@pytest.fixture(params=["postgres", "sqlite"])
def gateway_db(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> Iterator[str]:
    """The gateway's own database: PostgreSQL (production) or the embedded SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"
        return
    with fresh_postgres_database(postgres_server) as url:
        yield url


def test_a_retry_after_the_gateway_died_is_answered_at_once(
    tmp_path: Path, amqp_uri: str, postgres_server: str, gateway_db: str
):
    with fresh_postgres_database(postgres_server) as event_store:
        stack = crash_stack(tmp_path, amqp_uri, event_store, gateway_db)
        stack.start_all()
        try:
            result = crash_and_retry(stack, gateway_db, event_store)
        finally:
            stack.stop_all()
    print(
        f"retry answered {result.ready_to_answer:.3f}s after the gateway was ready "
        f"({result.crash_to_answer:.1f}s after the crash; {result.in_progress} x 409 first)"
    )
    assert result.status == 201, result.body
    assert result.ready_to_answer < 1.0, result
    assert result.posted == 1, result
