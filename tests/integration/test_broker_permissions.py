"""The broker permissions of the Kubernetes manifests, on a real RabbitMQ (issue 17).

The users of ``deploy/k8s/broker_credentials.py`` (their password hashes
included) and the permissions of ``deploy/k8s/base/rabbitmq-permissions.json``
are imported with ``rabbitmqctl`` into the test's virtual host, under names of
this run's own. Then every service, the gateway and the relay run with their
own user only: a contract is made and funded through the HTTP API (RPC both
ways, events through the relay to their consumers), and what no user but the
relay may do is refused by the broker itself.

Skipped where ``rabbitmqctl`` cannot manage the test broker (it needs to run
on the broker's host, with its Erlang cookie).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pika.exceptions
import pytest
import requests

from gateway.service import GatewayService
from services.bidding.service import BiddingService
from services.contracts.service import ContractsService
from services.escrow.service import EscrowService
from services.identity.service import IdentityService
from services.messaging.service import MessagingService
from services.projects.service import ProjectsService
from services.reputation.service import ReputationService
from shared.eventstore.sql import SqlEventStore
from shared.relay import AmqpPublisher, Relay
from shared.sql import create_sql_engine
from shared.testing import free_port, fresh_postgres_database
from tests.integration.test_contracts_api import Deal
from tests.integration.test_identity_api import SECRET
from tests.repository.test_broker_permissions import (
    NEEDS,
    PERMISSIONS,
    broker_credentials,
)

pytestmark = pytest.mark.integration

SERVICES = (
    IdentityService,
    ProjectsService,
    BiddingService,
    ContractsService,
    EscrowService,
    MessagingService,
    ReputationService,
)


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def users(amqp_uri: str) -> Iterator[dict[str, str]]:
    """Deployment name -> an AMQP URI as that Deployment's user (this run's copy)."""
    broker = urlsplit(amqp_uri)
    if shutil.which("rabbitmqctl") is None or broker.hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("rabbitmqctl is needed on the test broker's host to create users")
    if rabbitmqctl("list_vhosts").returncode != 0:
        pytest.skip("rabbitmqctl cannot manage the test broker (no Erlang cookie?)")
    vhost = unquote(broker.path[1:]) or "/"
    credentials = broker_credentials()
    run = f"test-{uuid.uuid4().hex[:8]}-"
    passwords = {name: secrets.token_urlsafe(16) for name in credentials.DEPLOYMENTS}
    declared = json.loads(PERMISSIONS.read_text())
    definitions = {
        "users": [credentials.user(run + n, p, []) for n, p in passwords.items()],
        "permissions": [
            {**p, "user": run + p["user"], "vhost": vhost}
            for p in declared["permissions"]
            if p["user"] in passwords
        ],
        "topic_permissions": [
            {**t, "user": run + t["user"], "vhost": vhost}
            for t in declared["topic_permissions"]
            if t["user"] in passwords
        ],
    }
    # rabbitmqctl runs as the broker's user, who cannot read the test's own files
    # (and some versions do not read "-" as stdin): a readable file, for a moment
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/tmp") as handle:
        json.dump(definitions, handle)
        handle.flush()
        os.chmod(handle.name, 0o644)
        imported = rabbitmqctl("import_definitions", handle.name)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    try:
        yield {
            name: f"amqp://{run}{name}:{password}@{broker.hostname}:{broker.port or 5672}/"
            + quote(vhost, safe="")
            for name, password in passwords.items()
        }
    finally:
        for name in passwords:
            rabbitmqctl("delete_user", run + name)


def refused(attempt: Callable[[Any], None], uri: str) -> bool:
    """Whether the broker closes the channel with 403 ACCESS_REFUSED on ``attempt``."""
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        attempt(channel)
        return False
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 403, exc
        return True
    finally:
        if connection.is_open:
            connection.close()


def publish(exchange: str, key: str) -> Callable[[Any], None]:
    """A probe, not an event: it expires at once wherever it lands."""
    probe = pika.BasicProperties(expiration="1")
    return lambda channel: channel.basic_publish(exchange, key, b"{}", probe)


@pytest.fixture
def stack(
    users: dict[str, str],
    fresh_pg: str,
    postgres_server: str,
    tmp_path: Path,
    container_factory: Any,
) -> Iterator[tuple[Deal, str]]:
    """Every service, the gateway and the relay, each with its own user only."""
    with fresh_postgres_database(postgres_server) as gateway_db:
        port, internal = free_port(), free_port()
        common = {"EVENT_STORE_URL": fresh_pg, "JWT_SECRET": SECRET, "DATABASE_URL": fresh_pg}
        for cls in SERVICES:
            container_factory(cls, {**common, "AMQP_URI": users[cls.name]}).start()
        container_factory(
            GatewayService,
            {
                **common,
                "AMQP_URI": users["gateway"],
                "DATABASE_URL": gateway_db,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "GATEWAY_INTERNAL_ADDRESS": f"127.0.0.1:{internal}",
                "BLOB_DIR": str(tmp_path / "blobs"),
            },
        ).start()
        store = SqlEventStore(fresh_pg)
        relay = Relay(store, create_sql_engine(fresh_pg), AmqpPublisher(users["relay"]))
        stop = threading.Event()
        relaying = threading.Thread(target=relay.run, args=(stop.is_set, 0.2))
        relaying.start()
        deal = Deal(f"http://127.0.0.1:{port}", store)
        deal.gateway_db, deal.event_store_url = gateway_db, fresh_pg
        try:
            yield deal, f"http://127.0.0.1:{internal}"
        finally:
            stop.set()
            relaying.join()
            relay.publisher.close()
            store.close()


def test_every_process_works_with_only_its_own_permissions(stack: tuple[Deal, str]):
    deal, internal = stack
    health = requests.get(f"{internal}/health/services", timeout=15)
    assert health.status_code == 200, health.text  # every RPC, both ways
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    # a project (projects), a proposal (bidding learns the project from
    # projects.events), an offer and its acceptance (contracts learns both)
    contract = deal.contract(buyer, seller, 40_000)
    cid, (milestone,) = contract["contract_id"], contract["milestones"]
    # funding: escrow learns the terms from contracts.events, contracts learns
    # the funding from escrow.events
    funded = deal.fund(buyer["access_token"], cid, milestone["milestone_id"])
    assert funded.status_code == 201, funded.text
    deal.milestone_status(buyer["access_token"], cid, milestone["milestone_id"], "funded")


def test_what_no_user_but_the_relay_may_do_is_refused_by_the_broker(
    stack: tuple[Deal, str], users: dict[str, str]
):
    """(``stack`` first: every queue and exchange exists, declared by its owner.)"""
    (approved,) = [q for q in NEEDS["escrow"].event_queues if "-MilestoneApproved--" in q]
    assert not refused(publish("contracts.events", "PermissionProbe"), users["relay"])
    for name in users:
        if name != "relay":
            forged = publish("contracts.events", "MilestoneApproved")
            assert refused(forged, users[name]), f"{name} could publish to contracts.events"
    gateway = users["gateway"]
    assert refused(lambda ch: ch.basic_consume(approved, lambda *a: None), gateway)
    assert refused(lambda ch: ch.basic_get(approved), gateway)
    assert refused(
        lambda ch: ch.queue_bind(
            ch.queue_declare("", exclusive=True).method.queue, "contracts.events"
        ),
        gateway,
    )
    # a service answers RPC but calls none: a request with its user is refused
    assert not refused(publish("nameko-rpc", str(uuid.uuid4())), users["escrow"])  # a reply
    assert refused(publish("nameko-rpc", "contracts.health"), users["escrow"])
    assert refused(lambda ch: ch.basic_get("rpc-contracts"), users["escrow"])


def test_no_service_can_route_to_another_services_queue_through_the_default_exchange(
    users: dict[str, str], amqp_uri: str
):
    (released,) = [q for q in NEEDS["contracts"].event_queues if "-EscrowReleased--" in q]
    parked = f"{released}.dead"  # declared as shared.consumer does; no consumer reads it
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    connection.channel().queue_declare(parked, durable=True)
    connection.close()
    assert refused(publish("", parked), users["identity"])
