"""Finding real PostgreSQL and RabbitMQ servers for tests.

testcontainers is tried first; where no Docker engine runs (it fails within a
second) the tests use the servers given by ``TEST_POSTGRES_URL`` and
``TEST_AMQP_URI``, whose defaults are the local services `make test` starts.
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import Any

from shared.probes import reachable_amqp, reachable_postgres
from shared.sql import temporary_database as fresh_postgres_database

__all__ = ["fresh_postgres_database", "reachable_amqp", "reachable_postgres"]

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
