"""``marketplace-relay``: runs the relay until SIGTERM/SIGINT, reconnecting on failures."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import pika.exceptions
import sqlalchemy.exc

from shared.config import settings
from shared.eventstore import EventStoreUnavailable, open_event_store
from shared.health import serve_health
from shared.logging import configure_logging, get_logger, redact_uri
from shared.probes import reachable_amqp
from shared.projection import single_active
from shared.relay import AmqpPublisher, Relay
from shared.schemas import load_all_event_schemas
from shared.sql import name_connections, shared_engine

log = get_logger("relay")

RECOVERABLE = (
    pika.exceptions.AMQPError,
    EventStoreUnavailable,
    sqlalchemy.exc.OperationalError,
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    configure_logging("relay")
    name_connections("relay")
    load_all_event_schemas()  # what is published, and which fields, is declared there
    cfg = settings()
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    reason = reachable_amqp(cfg.amqp_uri)
    if reason:
        log.warning(
            "RabbitMQ is not reachable yet; retrying",
            amqp_uri=redact_uri(cfg.amqp_uri),
            error=reason,
        )

    store = open_event_store(cfg.event_store_url, timeout=cfg.event_store_timeout)
    checkpoint_engine = shared_engine(cfg.relay_checkpoint_url)
    broker_ok = {"ok": False}

    def ready() -> dict[str, str]:
        checks = {"broker": "ok" if broker_ok["ok"] else "failing: not connected"}
        try:
            store.ping()
            checks["event_store"] = "ok"
        except Exception as exc:
            checks["event_store"] = f"failing: {exc}"
        return checks

    health = serve_health(cfg.health_address, ready, "relay")
    backoff = 0.5
    while not stopping:
        publisher = AmqpPublisher(cfg.amqp_uri)
        relay = Relay(store, checkpoint_engine, publisher, batch_size=cfg.relay_batch_size)
        try:
            with single_active(checkpoint_engine, "relay", lambda: stopping) as leader:
                if leader:
                    broker_ok["ok"] = reachable_amqp(cfg.amqp_uri) is None
                    relay.run(lambda: stopping)
            backoff = 0.5
        except RECOVERABLE as exc:
            broker_ok["ok"] = False
            log.warning("relay interrupted; resuming from its checkpoint", error=str(exc))
            time.sleep(backoff)
            backoff = min(backoff * 2, 15.0)
        finally:
            publisher.close()
    health.shutdown()
    store.close()
    log.info("relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
