"""Finding real PostgreSQL and RabbitMQ servers for tests.

testcontainers is tried first; where no Docker engine runs (it fails within a
second) the tests use the servers given by ``TEST_POSTGRES_URL`` and
``TEST_AMQP_URI``, whose defaults are the local services `make test` starts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa

from shared.probes import reachable_amqp, reachable_postgres

__all__ = ["reachable_amqp", "reachable_postgres"]

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


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "mp_test") -> Iterator[str]:
    """A new, empty database on the server for the duration of the block."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
