"""Consuming other services' events from RabbitMQ: retried, dead-lettered, idempotent.

Nameko's own ``event_handler`` acknowledges a message whose handler raised,
and the message is gone. :func:`event_handler` here instead moves it to
``<queue>.delay``, where it expires after ``CONSUMER_RETRY_DELAY_MS`` (a
per-message TTL, so the delay can change without redeclaring the queue) and
is dead-lettered back to the handler's queue; after ``CONSUMER_MAX_RETRIES`` failed
attempts it goes to ``<queue>.dead`` with the last error in its headers, for an
operator to inspect and replay. The copy is published (with confirms) before
the original is acknowledged, so a crash in between duplicates, never loses.
Both moves go through the service's own ``<service>.parking`` exchange (direct,
one binding per queue), never the default exchange: a broker user allowed to
publish to that one could reach any queue by name (``deploy/k8s``). Queues
named ``<queue>.wait`` are from before: they empty themselves and may be
deleted.

A message is handled only if it carries the relay's signature over its body
(``shared.signing``): the relay publishes only what is in the event log, so
anything else on the broker (a forged ``MilestoneApproved``, a test's stray
message) goes straight to ``<queue>.dead`` with the reason, and no handler
runs. The actor headers such a message may carry are ignored: a handler acts
as its own service.

Messages are published envelopes (``shared.schemas.PublishedEvent``): a
handler sees the published fields only. Duplicates are expected (the relay
publishes at least once): a handler's effect is idempotent, either through
:meth:`shared.database.Database.handle_once`, or by keeping what it learned
under the event's id (:mod:`shared.facts`), or because the events it appends
have ids derived from the message's.

A handler that only records what it hears (:func:`learns`, what
:meth:`shared.facts.Facts.learn_all` is for) is given the deliveries that
arrived together, and applies them in one transaction.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import eventlet
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.pools import producers
from nameko.events import SERVICE_POOL, EventHandler
from nameko.exceptions import ContainerBeingKilled

from shared.actor_assertion import ASSERTION
from shared.context import ACTOR_ID, ACTOR_ROLES, REQUEST_KEY
from shared.logging import get_logger
from shared.schemas import EventRegistry, PublishedEvent, registry
from shared.signing import SIGNATURE_HEADER, SIGNED_BY_HEADER, verifier

log = get_logger(__name__)

ATTEMPTS_HEADER = "x-attempts"
ERROR_HEADER = "x-last-error"


F = TypeVar("F", bound=Callable[..., Any])


def decode_message(payload: dict[str, Any], schemas: EventRegistry = registry) -> PublishedEvent:
    """A relayed envelope back to an event, its published data upcast to the
    current version and validated with the published schema."""
    return schemas.decode_published(payload)


class ReliableEventHandler(EventHandler):  # type: ignore[misc]  # nameko is untyped
    def __init__(self, source_service: str, event_type: str, **kwargs: Any) -> None:
        super().__init__(
            source_service,
            event_type,
            handler_type=SERVICE_POOL,
            reliable_delivery=True,
            requeue_on_error=False,
            **kwargs,
        )

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.max_retries = int(config.get("CONSUMER_MAX_RETRIES", 5))
        delay = int(config.get("CONSUMER_RETRY_DELAY_MS", 2000))
        name = self.queue.name
        self.retry_delay_ms = delay
        self.parking = Exchange(
            f"{self.container.service_name}.parking", type="direct", durable=True
        )
        self.retry_queue = Queue(
            f"{name}.delay",
            exchange=self.parking,
            routing_key=f"{name}.delay",
            durable=True,
            queue_arguments={
                "x-dead-letter-exchange": self.parking.name,
                "x-dead-letter-routing-key": name,
            },
        )
        self.dead_queue = Queue(
            f"{name}.dead", exchange=self.parking, routing_key=f"{name}.dead", durable=True
        )
        self.amqp_uri = config["AMQP_URI"]
        self.verifier = verifier("event")
        with Connection(self.amqp_uri) as conn:
            channel = conn.default_channel
            self.parking(channel).declare()
            self.retry_queue(channel).declare()
            self.dead_queue(channel).declare()
            # Back from the delay: the handler's own queue, declared as Nameko
            # declares it (it does again when it starts consuming).
            own = self.queue(channel)
            own.declare()
            own.bind_to(self.parking, routing_key=name)

    def handle_message(self, body: Any, message: Any) -> None:
        headers = message.headers or {}
        signature, signed_by = headers.get(SIGNATURE_HEADER), headers.get(SIGNED_BY_HEADER)
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        if not (
            isinstance(signature, str)
            and isinstance(signed_by, str)
            and self.verifier.verifies(raw, signature, signed_by)
        ):
            self._park_unverified(message)
            return
        self.dispatch(body, message)

    def dispatch(self, body: Any, message: Any) -> None:
        """A verified delivery to its worker: one each, as Nameko does."""
        super().handle_message(body, message)

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().unpack_message_headers(message)
        for key in (ACTOR_ID, ACTOR_ROLES, REQUEST_KEY, ASSERTION):
            data.pop(key, None)
        return data

    def _park_unverified(self, message: Any) -> None:
        headers = dict(message.headers or {})
        headers[ERROR_HEADER] = "unverified: not signed by the relay, so not from the event log"
        try:
            self._publish_copy(message, self.dead_queue, headers, None)
        except Exception:
            log.exception("could not park an unverified message; it will be redelivered")
            return
        log.warning(
            "unverified message parked",
            queue=self.queue.name,
            moved_to=self.dead_queue.name,
            message_id=(message.properties or {}).get("message_id"),
        )
        self.queue_consumer.ack_message(message)

    def handle_message_processed(
        self, message: Any, result: Any = None, exc_info: Any = None
    ) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0)) + 1
        target = self.retry_queue if attempts <= self.max_retries else self.dead_queue
        headers[ATTEMPTS_HEADER] = attempts
        headers[ERROR_HEADER] = f"{exc_info[0].__name__}: {exc_info[1]}"[:1000]
        expiration = self.retry_delay_ms / 1000 if target is self.retry_queue else None
        try:
            self._publish_copy(message, target, headers, expiration)
        except Exception:
            log.exception("could not park failed message; it will be redelivered")
            return
        log.warning(
            "event handler failed",
            queue=self.queue.name,
            attempts=attempts,
            moved_to=target.name,
            error=headers[ERROR_HEADER],
        )
        self.queue_consumer.ack_message(message)

    def _publish_copy(
        self, message: Any, target: Queue, headers: dict[str, Any], expiration: float | None
    ) -> None:
        properties = message.properties or {}
        connection = Connection(self.amqp_uri, transport_options={"confirm_publish": True})
        with connection as conn, producers[conn].acquire(block=True) as producer:
            producer.publish(
                message.body,
                exchange=self.parking,
                routing_key=target.routing_key,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                message_id=properties.get("message_id"),
                type=properties.get("type"),
                correlation_id=properties.get("correlation_id"),
                expiration=expiration,
                retry=True,
            )


BATCH_WINDOW_SECONDS = 0.002
"""How long a batching handler waits for the rest of a read's deliveries."""


class BatchingEventHandler(ReliableEventHandler):
    """Hands its method the list of deliveries that arrived together (up to the
    container's prefetch, ``MAX_WORKERS``), in one worker, so that it can apply
    them in one transaction instead of one each: what a consumer that only
    records facts costs per event is mostly its commit. A batch whose worker
    fails is handed over again one message at a time, so that a bad message is
    retried and parked alone while the rest are applied. The method must be
    idempotent per message, as every handler here is."""

    def setup(self) -> None:
        super().setup()
        self._pending: list[tuple[Any, Any]] = []
        self._collecting = False

    def dispatch(self, body: Any, message: Any) -> None:
        self._pending.append((body, message))
        if not self._collecting:
            self._collecting = True
            self.container.spawn_managed_thread(
                self._collect, identifier=f"{type(self).__name__}.collect[{self.queue.name}]"
            )

    def _collect(self) -> None:
        # The deliveries of one read from the broker are each on their way
        # here in a green thread of their own: let them arrive.
        eventlet.sleep(BATCH_WINDOW_SECONDS)
        batch, self._pending, self._collecting = self._pending, [], False
        self._spawn(batch)

    def _spawn(self, batch: list[tuple[Any, Any]]) -> None:
        try:
            self.container.spawn_worker(
                self,
                ([body for body, _ in batch],),
                {},
                context_data=self.unpack_message_headers(batch[0][1]),
                handle_result=partial(self._batch_done, batch),
            )
        except ContainerBeingKilled:
            for _, message in batch:
                self.queue_consumer.requeue_message(message)

    def _batch_done(
        self,
        batch: list[tuple[Any, Any]],
        worker_ctx: Any,
        result: Any = None,
        exc_info: Any = None,
    ) -> tuple[Any, Any]:
        if exc_info is None or len(batch) == 1:
            for _, message in batch:
                self.handle_message_processed(message, result, exc_info)
        else:
            log.warning(
                "a batch failed; handling its messages one at a time",
                queue=self.queue.name,
                messages=len(batch),
                error=f"{exc_info[0].__name__}: {exc_info[1]}"[:1000],
            )
            # In this worker, which still has its slot and its dependencies:
            # a stopping container waits for it, and no other slot is needed.
            method = getattr(worker_ctx.service, worker_ctx.entrypoint.method_name)
            for body, message in batch:
                try:
                    method([body])
                except Exception:
                    self.handle_message_processed(message, None, sys.exc_info())
                else:
                    self.handle_message_processed(message)
        return result, exc_info


event_handler = ReliableEventHandler.decorator


def event_handlers(source_service: str, *event_types: str) -> Callable[[F], F]:
    """One handler method for several event types of one source (one queue each)."""

    def decorate(fn: F) -> F:
        for event_type in event_types:
            fn = event_handler(source_service, event_type)(fn)
        return fn

    return decorate


def learns(source_service: str, *event_types: str) -> Callable[[F], F]:
    """One batching handler method (:class:`BatchingEventHandler`) for several
    event types of one source: it is given a list of payloads."""

    def decorate(fn: F) -> F:
        for event_type in event_types:
            fn = BatchingEventHandler.decorator(source_service, event_type)(fn)
        return fn

    return decorate
