"""Root test configuration.

eventlet must patch the standard library before anything opens a socket:
without it, Nameko tests against a real broker hang.
"""

import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

# Timers read their interval at import: the review clock ticks every second in tests.
os.environ.setdefault("CONTRACT_REVIEW_CHECK_SECONDS", "1")
os.environ.setdefault("REVIEW_REVEAL_CHECK_SECONDS", "1")
os.environ.setdefault("CONTRACT_REMINDER_CHECK_SECONDS", "1")
# ...and identity's mailer every fifth of a second.
os.environ.setdefault("MAIL_SEND_INTERVAL_SECONDS", "0.2")

from shared import testing  # noqa: E402
from shared.schemas import load_all_event_schemas  # noqa: E402

os.environ.setdefault("LOG_FORMAT", "console")
# Nothing a test runs may write into the project's own var/ directory.
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="marketplace-tests-"))
# As every service process does at start: know every service's event schemas.
load_all_event_schemas()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    url = testing.postgres_server_url()
    reason = testing.reachable_postgres(url)
    if reason:
        pytest.skip(f"no PostgreSQL server (testcontainers or {url}): {reason}")
    yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """One database for the session; tests that need isolation use ``fresh_pg``."""
    with testing.fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture
def fresh_pg(postgres_server: str) -> Iterator[str]:
    with testing.fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def amqp_uri() -> str:
    uri = testing.amqp_uri(os.environ.get("TEST_WORKER"))  # (see scripts/run-tests.sh)
    reason = testing.reachable_amqp(uri)
    if reason:
        pytest.skip(f"no RabbitMQ broker (testcontainers or {uri}): {reason}")
    return uri


SERIAL = (
    # Readers of the PostgreSQL event store see up to the cluster's oldest
    # running transaction: these assert on reads right after writes.
    "shared/tests/test_eventstore_sql.py",
    "tests/integration/test_eventtool.py",
    "tests/integration/test_projection.py",
    # Whole stacks under load or kill -9: they take both cores.
    "tests/integration/test_journeys.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_web_app.py",  # a whole stack and a browser
)
"""Test modules ``make test`` runs alone, after the rest ran in two processes
at once (``scripts/run-tests.sh``)."""


@pytest.hookimpl(tryfirst=True)  # (before -m selects, and before pytest-split splits)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::")[0] in SERIAL:
            item.add_marker(pytest.mark.serial)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    testing.stop_containers()
