"""Finding real PostgreSQL and RabbitMQ servers for tests.

testcontainers is tried first; where no Docker engine runs (it fails within a
second) the tests use the servers given by ``TEST_POSTGRES_URL`` and
``TEST_AMQP_URI``, whose defaults are the local services `make test` starts.
"""

from __future__ import annotations

import os
import random
import socket
from contextlib import suppress
from pathlib import Path
from typing import Any

from shared.probes import reachable_amqp, reachable_postgres
from shared.sql import temporary_database as fresh_postgres_database

__all__ = ["free_port", "fresh_postgres_database", "reachable_amqp", "reachable_postgres"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"

_containers: list[Any] = []


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def postgres_server_url() -> str:
    """URL of a PostgreSQL server database we may create databases from."""
    if "TEST_POSTGRES_URL" not in os.environ and _docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15", driver="psycopg2").start()
        _containers.append(container)
        return container.get_connection_url()
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def amqp_uri() -> str:
    if "TEST_AMQP_URI" not in os.environ and _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13").start()
        _containers.append(container)
        params = container.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}/"
    return os.environ.get("TEST_AMQP_URI", DEFAULT_AMQP_URI)


def stop_containers() -> None:
    while _containers:
        with suppress(Exception):
            _containers.pop().stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, for a server started later.

    It is drawn from below the kernel's ephemeral range: a port from that range
    (what binding to port 0 gives) can be taken, before the server binds it, as
    the local end of any outgoing connection, such as a service's connection to
    PostgreSQL or RabbitMQ (CI saw "Address already in use" so).
    """
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    for _ in range(100):
        port = random.randrange(10_000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port found between 10000 and {low}")
