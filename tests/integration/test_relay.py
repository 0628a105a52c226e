"""The relay against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pika
import pytest
from kombu import Connection, Exchange, Queue

from shared.eventstore.sql import SqlEventStore
from shared.relay import AmqpPublisher, Relay
from shared.sql import create_sql_engine
from tests.integration.helpers import thing, wait_until

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


def bind_test_queue(amqp_uri: str, source: str) -> Queue:
    queue = Queue(
        f"test-relay-{uuid.uuid4().hex[:8]}",
        Exchange(f"{source}.events", type="topic", durable=True),
        routing_key="#",
        durable=False,
        auto_delete=False,
    )
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    return queue


def drain(amqp_uri: str, queue: Queue, want: set[str], timeout: float) -> list[dict]:
    """Consume until every wanted event id was seen (duplicates kept)."""
    received: list[dict] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as conn:
        bound = queue(conn.default_channel)
        while time.monotonic() < deadline and not want <= seen:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            body = orjson.loads(message.body)
            body["_properties"] = message.properties
            body["_headers"] = message.headers
            received.append(body)
            seen.add(body["event_id"])
        bound.delete()
    return received


def test_relay_publishes_each_event_as_nameko_consumes_it(fresh_pg: str, amqp_uri: str):
    store = SqlEventStore(fresh_pg)
    source = f"relay{uuid.uuid4().hex[:6]}"
    queue = bind_test_queue(amqp_uri, source)
    event = thing(amount=42, source=source, correlation_id="corr-relay-1")
    store.append("thing-1", [event])

    relay = Relay(store, create_sql_engine(fresh_pg), AmqpPublisher(amqp_uri))
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop.is_set, 0.2))
    runner.start()
    try:
        (got,) = drain(amqp_uri, queue, {str(event.event_id)}, timeout=20)
    finally:
        stop.set()
        runner.join()
        relay.publisher.close()

    assert got["event_type"] == "ThingHappened"
    assert got["data"] == {"thing_id": event.data["thing_id"], "amount": 42}
    assert got["subject"] == "1" and got["revision"] == 0 and "stream" not in got
    assert got["metadata"]["correlation_id"] == "corr-relay-1"
    properties = got["_properties"]
    assert properties["message_id"] == str(event.event_id)
    assert properties["delivery_mode"] == 2
    assert properties["content_type"] == "application/json"
    assert got["_headers"]["nameko.correlation_id"] == "corr-relay-1"
    assert got["_headers"]["nameko.causation_id"] == str(event.event_id)
    assert relay.checkpoint() == store.last_position()
    store.close()


def test_relay_killed_at_random_moments_loses_nothing(fresh_pg: str, amqp_uri: str):
    """kill -9 the relay repeatedly while events are appended: every event
    still reaches the broker (some twice, which consumers tolerate)."""
    store = SqlEventStore(fresh_pg)
    source = f"relaykill{uuid.uuid4().hex[:6]}"
    queue = bind_test_queue(amqp_uri, source)
    env = dict(
        os.environ,
        EVENT_STORE_URL=fresh_pg,
        RELAY_CHECKPOINT_URL=fresh_pg,
        AMQP_URI=amqp_uri,
        RELAY_BATCH_SIZE="50",
        LOG_FORMAT="json",
        EXTRA_EVENT_SCHEMAS="tests.integration.helpers",  # ThingHappened is published
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )

    def start_relay() -> subprocess.Popen:
        return subprocess.Popen(
            [str(VENV_BIN / "marketplace-relay")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    appended: set[str] = set()
    done = threading.Event()

    def write() -> None:
        rng = random.Random(7)
        for i in range(150):
            batch = [thing(amount=i, source=source) for _ in range(rng.randint(1, 4))]
            store.append(f"thing-{i % 13}", batch)
            appended.update(str(e.event_id) for e in batch)
            time.sleep(rng.random() * 0.02)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(11)
    relay = start_relay()
    kills = 0
    try:
        while not done.is_set() or kills < 4:
            time.sleep(rng.uniform(0.3, 1.0))
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            relay = start_relay()
        writer.join()
        received = drain(amqp_uri, queue, set(appended), timeout=60)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        store.close()

    ids = [r["event_id"] for r in received]
    missing = set(appended) - set(ids)
    assert not missing, f"{len(missing)} events never reached the broker"
    assert kills >= 4
    assert len(appended) > 200


def test_relay_answers_health_probes(fresh_pg: str, amqp_uri: str):
    import requests

    from shared.testing import free_port

    port = free_port()
    env = dict(
        os.environ,
        EVENT_STORE_URL=fresh_pg,
        RELAY_CHECKPOINT_URL=fresh_pg,
        AMQP_URI=amqp_uri,
        HEALTH_ADDRESS=f"127.0.0.1:{port}",
    )
    relay = subprocess.Popen(
        [str(VENV_BIN / "marketplace-relay")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            try:
                return (
                    requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code
                    == 200
                )
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=30, what="relay ready")
        assert (
            requests.get(f"http://127.0.0.1:{port}/health/live", timeout=2).json()["service"]
            == "relay"
        )
    finally:
        relay.terminate()
        assert relay.wait(timeout=15) == 0


def test_an_idle_relay_keeps_its_broker_connection_alive(fresh_pg: str, amqp_uri: str):
    """With a 1 s heartbeat, the broker drops a publisher that says nothing
    for a few seconds; one that the idle relay keeps alive stays open and
    publishes on the same connection afterwards."""
    store = SqlEventStore(fresh_pg)
    source = f"relayidle{uuid.uuid4().hex[:6]}"
    queue = bind_test_queue(amqp_uri, source)
    events = [thing(source=source) for _ in range(3)]
    store.append("thing-idle", events)
    first, later, third = store.read_stream("thing-idle")
    beating = f"{amqp_uri}{'&' if '?' in amqp_uri else '?'}heartbeat=1"
    kept, silent = AmqpPublisher(beating), AmqpPublisher(beating)
    kept.publish(first)
    silent.publish(third)
    connection = kept._connection
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kept.keep_alive()
        time.sleep(0.25)
    assert kept._connection is connection and connection.is_open
    kept.publish(later)
    assert kept._connection is connection
    with pytest.raises(pika.exceptions.AMQPError):  # the one nobody kept alive
        silent._connection.process_data_events(time_limit=0)
    got = drain(amqp_uri, queue, {str(first.event_id), str(later.event_id)}, timeout=20)
    assert {str(first.event_id), str(later.event_id)} <= {e["event_id"] for e in got}
    kept.close()
    silent.close()
    store.close()
