"""The relay: the event store is the outbox, and this publishes it to RabbitMQ.

Only published event types leave, and only their published fields
(``shared.schemas``: a service's published events are its API; private
events, secrets and sensitive fields never reach the broker). Each event
goes to the topic exchange ``<source service>.events`` with the event type
as routing key — exactly what Nameko's ``@event_handler(source,
type)`` binds to. Messages are persistent, carry the event id as
``message_id`` and the request's ids as Nameko context headers, and are
published with publisher confirms; each is signed with the relay's event key
(``shared.signing``), which is how consumers know it came from the log. The
checkpoint moves only after the broker confirmed every event before it, so a
relay killed at any moment loses nothing when restarted; it may publish some
events again (consumers are idempotent).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pika
from sqlalchemy.engine import Engine

from shared.context import CAUSATION_ID, CORRELATION_ID
from shared.database import create_schema, read_checkpoint, save_checkpoint
from shared.eventstore import EventStore, RecordedEvent
from shared.logging import get_logger
from shared.schemas import EventRegistry, NotPublished, registry
from shared.signing import SIGNATURE_HEADER, SIGNED_BY_HEADER, Signer, signer
from shared.sql import write_transaction

log = get_logger(__name__)

NAMEKO_HEADER = "nameko.{}"


def exchange_for(event: RecordedEvent) -> str:
    return f"{event.metadata.source or event.category}.events"


class AmqpPublisher:
    """pika publisher with confirms; one message confirmed at a time."""

    def __init__(self, amqp_uri: str, event_signer: Signer | None = None) -> None:
        self.parameters = pika.URLParameters(amqp_uri)
        self.signer = event_signer or signer("event")
        self._connection: pika.BlockingConnection | None = None
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None
        self._declared: set[str] = set()

    def _ensure_channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self.close()
            self._connection = pika.BlockingConnection(self.parameters)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            self._declared.clear()
        return self._channel

    def publish(
        self, event: RecordedEvent, body: bytes | None = None, exchange: str | None = None
    ) -> None:
        """Publish ``body`` (by default the event's published envelope; the
        replay tool sends redacted export envelopes) to the event's own
        exchange or to ``exchange``."""
        if body is None:
            envelope = registry.publish(event)
            if envelope is None:
                raise NotPublished(event.type)
            body = orjson.dumps(envelope)
        channel = self._ensure_channel()
        exchange = exchange or exchange_for(event)
        if exchange not in self._declared:
            # The same declaration Nameko makes for its event exchanges.
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            self._declared.add(exchange)
        meta = event.metadata
        properties = pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=str(event.event_id),
            type=event.type,
            correlation_id=meta.correlation_id or None,
            timestamp=int(event.recorded_at.timestamp()),
            headers={
                NAMEKO_HEADER.format(CORRELATION_ID): meta.correlation_id,
                NAMEKO_HEADER.format(CAUSATION_ID): str(event.event_id),
                SIGNATURE_HEADER: self.signer.sign(body),
                SIGNED_BY_HEADER: self.signer.key_id,
            },
        )
        # With confirms on, this returns once the broker has taken
        # responsibility for the message (and raises if it refused it).
        channel.basic_publish(exchange, event.type, body, properties)

    def keep_alive(self) -> None:
        """Answer the broker's heartbeats while there is nothing to publish
        (called on every pass of the relay's loop).

        A ``BlockingConnection`` only does so inside its own calls, and the
        broker closes a connection it has not heard from for two heartbeat
        intervals: after a minute without appends (the bench's read phases)
        the next publish found the connection dead, and the relay stopped and
        resumed from its checkpoint, publishing again what it had not yet
        checkpointed."""
        if self._connection is None or not self._connection.is_open:
            return
        try:
            self._connection.process_data_events(time_limit=0)
        except pika.exceptions.AMQPError as exc:
            log.warning("broker connection lost while idle; reconnecting", error=str(exc))
            self.close()

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self._connection.close()
        self._connection = None
        self._channel = None


@dataclass
class RelayStats:
    published: int = 0
    """Events the relay went past, published or private."""
    position: int | None = None
    started_at: float = 0.0


class Relay:
    def __init__(
        self,
        store: EventStore,
        checkpoint_engine: Engine,
        publisher: AmqpPublisher,
        name: str = "relay",
        batch_size: int = 500,
        schemas: EventRegistry = registry,
    ) -> None:
        self.store = store
        self.checkpoint_engine = checkpoint_engine
        self.publisher = publisher
        self.name = name
        self.batch_size = batch_size
        self.schemas = schemas
        self._unknown: set[str] = set()
        self.stats = RelayStats(started_at=time.monotonic())

    def checkpoint(self) -> int | None:
        with self.checkpoint_engine.connect() as conn:
            return read_checkpoint(conn, self.name)[0]

    def publish_batch(self, batch: list[RecordedEvent]) -> None:
        for event in batch:
            envelope = self.schemas.publish(event)
            if envelope is not None:  # private events stay in their service
                self.publisher.publish(event, orjson.dumps(envelope))
            elif not self.schemas.knows(event.type) and event.type not in self._unknown:
                self._unknown.add(event.type)
                log.warning("event type with no schema is not published", type=event.type)
        with write_transaction(self.checkpoint_engine) as conn:
            save_checkpoint(conn, self.name, batch[-1].position)
        self.stats.published += len(batch)
        self.stats.position = batch[-1].position

    def run(self, should_stop: Callable[[], bool], idle_timeout: float = 1.0) -> None:
        create_schema(self.checkpoint_engine)
        checkpoint = self.checkpoint()
        log.info("relay starting", checkpoint=checkpoint)
        last_report = time.monotonic()
        with self.store.subscribe(checkpoint=checkpoint) as subscription:
            while not should_stop():
                batch = subscription.next_batch(self.batch_size, idle_timeout)
                if batch:
                    self.publish_batch(batch)
                self.publisher.keep_alive()  # (a batch of private events sends nothing)
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    log.info(
                        "relay progress",
                        published=self.stats.published,
                        position=self.stats.position,
                    )
