"""Finding real PostgreSQL and RabbitMQ servers for tests, and
:class:`ServiceHarness` for the fast tests of each service's entrypoints.

testcontainers is tried first; where no Docker engine runs (it fails within a
second) the tests use the servers given by ``TEST_POSTGRES_URL`` and
``TEST_AMQP_URI``, whose defaults are the local services `make test` starts.
"""

from __future__ import annotations

import inspect
import os
import random
import socket
import subprocess
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson
from nameko.dependency_providers import Config
from nameko.testing.services import worker_factory

from shared.clock import FixedClock
from shared.context import Context
from shared.database import Database, create_schema
from shared.eventlog import ServiceEventLog
from shared.eventstore import (
    AppendResult,
    EventStore,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
    StreamNotFound,
    StreamState,
    category_of,
)
from shared.eventstore.sql import SqlEventStore
from shared.facts import Facts, LearnedFacts, facts_metadata
from shared.personal import MemoryKeyring, PersonalDataStore
from shared.probes import reachable_amqp, reachable_postgres
from shared.projection import ProjectionHandle, ProjectionRunner, ProjectionWorker
from shared.schemas import ENTRY_POINT_GROUP, registry
from shared.sql import create_sql_engine
from shared.sql import temporary_database as fresh_postgres_database

__all__ = [
    "ServiceHarness",
    "free_port",
    "fresh_postgres_database",
    "own_virtual_host",
    "reachable_amqp",
    "reachable_postgres",
    "stream_owners",
]

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


def amqp_uri(worker: str | None = None) -> str:
    """The test broker; ``worker``: the name of one of several test processes
    run at once, which gets a virtual host of its own on a shared broker (a
    container is its own already)."""
    if "TEST_AMQP_URI" not in os.environ and _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13").start()
        _containers.append(container)
        params = container.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}/"
    uri = os.environ.get("TEST_AMQP_URI", DEFAULT_AMQP_URI)
    return own_virtual_host(uri, f"tests-{worker}") if worker else uri


def own_virtual_host(uri: str, name: str) -> str:
    """``uri`` on a virtual host of its own, created if missing (``rabbitmqctl``
    on the broker's host): test processes run at once each run services of the
    same names, whose queues must not be shared."""
    broker = urlsplit(uri)
    for args in (
        ["add_vhost", name],
        ["set_permissions", "-p", name, unquote(broker.username or "guest"), ".*", ".*", ".*"],
    ):
        try:
            done = subprocess.run(
                ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(
                f"test processes run at once need a virtual host each: rabbitmqctl {args[0]}"
                f" could not run ({exc}); run one at a time"
            ) from exc
        if done.returncode != 0 and "already_exists" not in done.stderr + done.stdout:
            raise RuntimeError(
                f"test processes run at once need a virtual host each: rabbitmqctl {args[0]} "
                f"failed ({done.stderr.strip() or done.stdout.strip()}); run one at a time"
            )
    return urlunsplit(broker._replace(path="/" + quote(name, safe="")))


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


# -- driving a service's entrypoints without a broker ---------------------------------


class RacingStore:
    """An event store whose next appends to a stream may first let another
    writer in (see :meth:`ServiceHarness.race`); otherwise the store it wraps."""

    def __init__(self, store: EventStore) -> None:
        self.inner = store
        self.races: dict[str, list[Callable[[], None]]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_revision: ExpectedRevision = StreamState.ANY,
    ) -> AppendResult:
        pending = self.races.get(stream)
        if pending:
            pending.pop()()
        return self.inner.append(stream, events, expected_revision)


def stream_owners() -> dict[str, str]:
    """Stream category -> the service that owns it (from its events module)."""
    owners = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        for category in getattr(entry.load(), "STREAM_CATEGORIES", ()):
            owners[category] = entry.name
    return owners


class ServiceHarness:
    """A service's entrypoints called directly, as Nameko's ``worker_factory``
    makes them: the event log on an embedded SQLite event store, the read
    models in a SQLite file beside it, a :class:`FixedClock` (stopped at the
    time the harness was made: the store stamps events with the real time,
    and some decisions compare the two), and the service's projections run
    when the test says (:meth:`catch_up`).

    Each :meth:`worker` is one request (one worker): its own context, and so its
    own event-id sequence. Two workers with the same ``key`` are a request and
    its retry. Any other dependency is a ``MagicMock`` unless given.
    """

    def __init__(
        self,
        service_cls: Any,
        directory: Path,
        config: dict[str, Any] | None = None,
        **dependencies: Any,
    ) -> None:
        self.service_cls: Any = service_cls  # a Nameko service class (untyped)
        backend = SqlEventStore(f"sqlite:///{directory / 'events.sqlite'}")
        self.keyring = MemoryKeyring()
        self.store = RacingStore(PersonalDataStore(backend, self.keyring))
        self.engine = create_sql_engine(f"sqlite:///{directory / 'readmodel.sqlite'}")
        create_schema(self.engine, *self.service_cls.db.metadatas, facts_metadata)
        self.db = Database(self.engine)
        self.facts = Facts(self.db, self.service_cls.name, wait_seconds=0)  # nothing is on its way
        self.clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        self.config: dict[str, Any] = {"AMQP_URI": "memory://", **(config or {})}
        self.dependencies = dependencies
        self.views: dict[str, ProjectionHandle] = {}
        self.configs: dict[str, Any] = {}
        for name, provider in inspect.getmembers(service_cls):
            if isinstance(provider, Config):
                self.configs[name] = self.config
            if isinstance(provider, LearnedFacts):
                self.configs[name] = self.facts
            if isinstance(provider, ProjectionWorker):
                runner = ProjectionRunner(provider.projection, self.store, self.engine)  # type: ignore[arg-type]  # a wrapped store
                runner.prepare()
                self.views[name] = ProjectionHandle(self.engine, runner)

    def worker(
        self,
        actor: str = "system:test",
        roles: Sequence[str] = (),
        key: str | None = None,
        **dependencies: Any,
    ) -> Any:
        """A service instance for one request by ``actor`` (``key``: its Idempotency-Key)."""
        correlation = str(uuid.uuid4())
        context = Context(correlation, correlation, actor, self.service_cls.name, tuple(roles), key)
        given = {**self.dependencies, **dependencies}
        return worker_factory(
            self.service_cls,
            context=context,
            event_log=given.pop("event_log", None) or ServiceEventLog(self.store, context),  # type: ignore[arg-type]  # a wrapped store
            db=self.db,
            clock=self.clock,
            **{**self.configs, **self.views, **given},
        )

    def race(
        self,
        stream: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        times: int = 1,
        actor: str = "system:other",
    ) -> None:
        """Another writer appends ``events`` to ``stream`` just before each of the
        service's next ``times`` appends there (after it decided): a race lost."""
        self.store.races[stream] = [lambda: self.append(stream, events, actor)] * times

    def catch_up(self) -> None:
        """Bring the service's read models up to the log."""
        for view in self.views.values():
            view.runner.catch_up()

    def append(
        self, stream: str, events: Sequence[tuple[str, dict[str, Any]]], actor: str = "system:test"
    ) -> None:
        """Record events as the stream's owner would have (a test's setup);
        the service learns the published ones, as RabbitMQ would bring them."""
        correlation = str(uuid.uuid4())
        owner = stream_owners().get(category_of(stream), category_of(stream))
        context = Context(correlation, correlation, actor, owner)
        result = ServiceEventLog(self.store.inner, context).record(stream, events)
        if owner != self.service_cls.name:
            for recorded in self.store.inner.read_stream(
                stream, from_revision=result.first_revision
            ):
                envelope = registry.publish(recorded)
                if envelope is not None:
                    self.facts.learn(orjson.loads(orjson.dumps(envelope)))

    def recorded(self, stream: str) -> list[RecordedEvent]:
        try:
            events: list[RecordedEvent] = self.store.read_stream(stream)
            return events
        except StreamNotFound:
            return []

    def types(self, stream: str) -> list[str]:
        """The types of the stream's events, in order."""
        return [e.type for e in self.recorded(stream)]

    def message(self, stream: str, event_type: str) -> dict[str, Any]:
        """The last ``event_type`` of the stream as the relay publishes it (an
        event handler's payload)."""
        event = next(e for e in reversed(self.recorded(stream)) if e.type == event_type)
        payload: dict[str, Any] = orjson.loads(orjson.dumps(registry.publish(event)))
        return payload
