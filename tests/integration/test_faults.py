"""Journeys while processes die: ``kill -9`` the relay, each service and the
gateway at random moments and start them again (as Kubernetes would), and
restart RabbitMQ. At the end nothing is lost, nothing happened twice, every
ledger balances and every projection equals its rebuild; the only failures
a client saw were retryable ones, retried with the same Idempotency-Key.

CI runs a short profile; ``make test-full`` a longer one (FAULT_JOURNEYS,
FAULT_KILLS)."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.testing import fresh_postgres_database
from tests.integration.journey import journey
from tests.integration.stack import Stack
from tests.integration.test_journeys import check_totals, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOURNEYS = int(os.environ.get("FAULT_JOURNEYS", "6"))
MIN_KILLS = int(os.environ.get("FAULT_KILLS", "6"))
RETRYABLE_SEEN = {
    "ConnectionError",
    "ReadTimeout",
    "ChunkedEncodingError",
    "502",
    "503",
    "504",
    "409 in progress",  # the same key while its first attempt still runs: "retry shortly"
}


def what_the_log_holds(stack: Stack, message: str) -> str:
    """For a failure's message: the events of every stream named by an id in it."""
    ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", message))
    engine = sa.create_engine(stack.url_db)
    lines = []
    with engine.connect() as conn:
        for id_ in ids:
            rows = conn.execute(
                sa.text(
                    "SELECT stream_name, revision, event_type FROM events "
                    "WHERE stream_name LIKE :p ORDER BY position"
                ),
                {"p": f"%{id_}%"},
            ).all()
            lines += [f"  {r.stream_name}@{r.revision}: {r.event_type}" for r in rows]
    engine.dispose()
    return "\n".join(lines)


def restart_rabbitmq() -> bool:
    """Stop and start the broker's application (its connections all drop)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return False
    subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=120)
    time.sleep(2)
    subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=120)
    subprocess.run([ctl, "await_startup"], capture_output=True, timeout=120)
    return True


class Chaos(threading.Thread):
    def __init__(self, stack: Stack, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.stack, self.rng = stack, rng
        self.stop = threading.Event()
        self.kills: Counter = Counter()
        self.broker_restarts = 0
        self.error: BaseException | None = None

    def supervise(self) -> None:
        """Start again whatever exited on its own (a restart policy)."""
        for name, process in list(self.stack.processes.items()):
            if process.poll() is not None:
                self.stack.start(name)

    def run(self) -> None:
        try:
            victims = list(self.stack.commands)
            while not self.stop.is_set():
                self.stop.wait(self.rng.uniform(2, 5))
                if self.stop.is_set():
                    break
                if self.broker_restarts == 0 and sum(self.kills.values()) >= 3:
                    self.broker_restarts += restart_rabbitmq()
                else:
                    victim = self.rng.choice(victims)
                    self.stack.kill(victim)
                    self.kills[victim] += 1
                    self.stop.wait(self.rng.uniform(0.2, 2))
                    self.stack.start(victim)
                self.supervise()
        except BaseException as exc:  # the test reports it
            self.error = exc


@pytest.fixture
def chaos_stack(tmp_path: Path, amqp_uri: str, postgres_server: str) -> Iterator[Stack]:
    with fresh_postgres_database(postgres_server) as url:
        stack = Stack(
            tmp_path, stack_env(tmp_path, amqp_uri, review_seconds=40, EVENT_STORE_URL=url)
        )
        stack.url_db = url
        stack.start_all()
        try:
            yield stack
        finally:
            stack.stop_all()


def test_nothing_is_lost_or_doubled_while_processes_die(chaos_stack: Stack):
    failures: Counter = Counter()
    chaos = Chaos(chaos_stack, random.Random(int(os.environ.get("FAULT_SEED", "7"))))
    chaos.start()

    def one(i: int) -> dict:
        time.sleep(i * 1.5)  # spread them over the chaos
        try:
            return journey(chaos_stack.url, failures, full=False)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_the_log_holds(chaos_stack, str(exc))}") from None

    try:
        with ThreadPoolExecutor(JOURNEYS) as pool:
            results = list(pool.map(one, range(JOURNEYS)))
        while sum(chaos.kills.values()) < MIN_KILLS and chaos.error is None:
            time.sleep(0.5)
    finally:
        chaos.stop.set()
        chaos.join(timeout=120)
    assert chaos.error is None, chaos.error
    for name, process in chaos_stack.processes.items():  # everything back up
        if process.poll() is not None:
            chaos_stack.start(name)
    chaos_stack.wait_ready()

    print(f"kills: {dict(chaos.kills)}; broker restarts: {chaos.broker_restarts}")
    print(f"failures the clients retried: {dict(failures)}")
    assert sum(chaos.kills.values()) >= MIN_KILLS
    assert set(failures) <= RETRYABLE_SEEN, failures
    check_totals(chaos_stack, results)
    gateway_db = Path(chaos_stack.env["VAR_DIR"]) / "gateway.sqlite"
    engine = sa.create_engine(f"sqlite:///{gateway_db}")
    with engine.connect() as conn:
        doubled = conn.execute(
            sa.text(
                "SELECT user_id, kind, link_id, milestone_id, count(*) FROM notifications "
                "WHERE kind IN ('payment_released', 'milestone_funded', 'approved') "
                "GROUP BY user_id, kind, link_id, milestone_id HAVING count(*) > 1"
            )
        ).all()
    engine.dispose()
    assert doubled == [], doubled
