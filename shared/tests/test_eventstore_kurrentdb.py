"""The contract on KurrentDB/EventStoreDB, when a server is available.

Set ``KURRENTDB_URI`` (for example ``kurrentdb://127.0.0.1:2113?tls=false``)
or run where a Docker engine is present for testcontainers to start one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from shared.eventstore.kurrent import KurrentEventStore
from shared.testing import _containers, _docker_available
from shared.tests.eventstore_contract import EventStoreContract


def _kurrentdb_uri() -> str | None:
    if os.environ.get("KURRENTDB_URI"):
        return os.environ["KURRENTDB_URI"]
    if not _docker_available():
        return None
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer("docker.kurrent.io/kurrent-latest/kurrentdb:25.1")
        .with_env("KURRENTDB_INSECURE", "true")
        .with_env("KURRENTDB_RUN_PROJECTIONS", "None")
        .with_exposed_ports(2113)
        .start()
    )
    _containers.append(container)
    wait_for_logs(container, "IS LEADER", timeout=60)
    port = container.get_exposed_port(2113)
    return f"kurrentdb://{container.get_container_host_ip()}:{port}?tls=false"


if not os.environ.get("KURRENTDB_URI") and not _docker_available():
    pytest.skip(
        "KurrentDB contract: no server (set KURRENTDB_URI, or run with a Docker engine "
        "for testcontainers)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def kurrentdb_uri() -> str:
    uri = _kurrentdb_uri()
    assert uri is not None
    return uri


@pytest.mark.integration
class TestKurrentEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, kurrentdb_uri: str) -> Iterator[KurrentEventStore]:
        store = KurrentEventStore(kurrentdb_uri, timeout=10)
        yield store
        store.close()

    @pytest.fixture
    def commit_jitter(self) -> Any:
        return contextlib.nullcontext()
