"""A request's ids travel RPC -> event -> relay -> handler -> event, and into logs."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from shared.consumer import decode_message, event_handler
from shared.context import RequestContext
from shared.eventlog import EventLog
from shared.eventstore.sql import SqlEventStore
from shared.logging import configure_logging, get_logger
from shared.relay import AmqpPublisher, Relay
from shared.sql import create_sql_engine
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration

log = get_logger("tests.origin")


class OriginService:
    name = "origin"
    context = RequestContext()
    event_log = EventLog()

    @rpc
    def start(self, thing_id: str) -> str:
        log.info("thing started", thing_id=thing_id)
        self.event_log.record(
            f"thing-{thing_id}", [("ThingHappened", {"thing_id": thing_id, "amount": 3})]
        )
        return self.context.correlation_id


class FollowerService:
    name = "follower"
    context = RequestContext()
    event_log = EventLog()

    @event_handler("origin", "ThingHappened")
    def follow(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        thing_id = event.data["thing_id"]
        self.event_log.record(f"followup-{thing_id}", [("ThingFollowedUp", {"thing_id": thing_id})])


def test_ids_travel_from_request_to_follow_up_event_and_logs(
    fresh_pg: str, amqp_uri: str, container_factory: Any, capsys: pytest.CaptureFixture[str]
):
    configure_logging("tests", log_format="json", level="INFO")
    config = {"AMQP_URI": amqp_uri, "EVENT_STORE_URL": fresh_pg, "DATABASE_URL": fresh_pg}
    for cls in (OriginService, FollowerService):
        container_factory(cls, config).start()
    store = SqlEventStore(fresh_pg)
    relay = Relay(store, create_sql_engine(fresh_pg), AmqpPublisher(amqp_uri))
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop.is_set, 0.2))
    relaying.start()
    try:
        context = {"correlation_id": "corr-chain-1", "causation_id": "req-1", "actor_id": "user-9"}
        with ClusterRpcProxy(config, context_data=context) as cluster:
            assert cluster.origin.start("t1") == "corr-chain-1"
        followup = wait_until(
            lambda: list(store.read_all(categories=["followup"])), what="follow-up event"
        )
    finally:
        stop.set()
        relaying.join()
        relay.publisher.close()

    (first,) = store.read_stream("thing-t1")
    assert first.metadata.correlation_id == "corr-chain-1"
    assert first.metadata.causation_id == "req-1"
    assert first.metadata.actor_id == "user-9"
    assert first.metadata.source == "origin"
    (second,) = followup
    assert second.type == "ThingFollowedUp"
    assert second.metadata.correlation_id == "corr-chain-1"
    assert second.metadata.causation_id == str(first.event_id)
    assert second.metadata.actor_id == "system:follower"
    assert second.metadata.source == "follower"

    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    started = [line for line in lines if line.get("event") == "thing started"]
    assert started and started[0]["correlation_id"] == "corr-chain-1"
    assert started[0]["actor_id"] == "user-9"
    configure_logging("tests", log_format="console")
    store.close()
