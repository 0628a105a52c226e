"""What one consumer costs per event: a service learning another's published
events (``shared.facts``, as every service does), in batches and one at a time
as before, against a bare Nameko event handler that does nothing, in the same
run, on the same broker.

Each variant runs alone: its queue is declared, ``--events`` relay-signed
``ProposalSubmitted`` envelopes are published into it while it is stopped,
then it starts and the clock runs until it has handled them all. This is a
service catching up (after a deploy, or with the marketplace bench's seed);
live traffic pays the same per event.

    PYTHONPATH=. .venv/bin/python bench/consumer.py [--events N] [--profile DIR]
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import AbstractContextManager  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-consumer-"))  # the dev keys

from kombu import Connection  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402
from nameko.events import SERVICE_POOL  # noqa: E402
from nameko.events import event_handler as bare_event_handler  # noqa: E402

from bench.profiling import py_spy  # noqa: E402
from shared.consumer import event_handler, learns  # noqa: E402
from shared.eventstore import EventMetadata, RecordedEvent  # noqa: E402
from shared.facts import LearnedFacts  # noqa: E402
from shared.relay import AmqpPublisher  # noqa: E402
from shared.schemas import load_all_event_schemas, registry  # noqa: E402
from shared.testing import (  # noqa: E402
    amqp_uri,
    fresh_postgres_database,
    own_virtual_host,
    postgres_server_url,
)

handled = 0


class BareConsumer:
    """The floor: Nameko's own handler, acknowledging each message after a no-op."""

    name = "bench_bare"

    @bare_event_handler(
        "bidding", "ProposalSubmitted", handler_type=SERVICE_POOL, reliable_delivery=True
    )
    def on_proposal(self, payload: dict[str, Any]) -> None:
        global handled
        handled += 1


class OneByOneConsumer:
    """How services learned facts before batching: a worker and a transaction each."""

    name = "bench_one_by_one"
    facts = LearnedFacts()

    @event_handler("bidding", "ProposalSubmitted")
    def on_proposal(self, payload: dict[str, Any]) -> None:
        global handled
        self.facts.learn(payload)
        handled += 1


class LearningConsumer:
    """What contracts, messaging and the others do with a proposal they hear of."""

    name = "bench_learning"
    facts = LearnedFacts()

    @learns("bidding", "ProposalSubmitted")
    def on_proposal(self, payloads: list[dict[str, Any]]) -> None:
        global handled
        self.facts.learn_all(payloads)
        handled += len(payloads)


def proposals(count: int) -> Iterator[RecordedEvent]:
    buyer, project = str(uuid.uuid4()), str(uuid.uuid4())
    for n in range(count):
        seller, proposal = str(uuid.uuid4()), str(uuid.uuid4())
        data = {
            "proposal_id": proposal,
            "project_id": project,
            "buyer_id": buyer,
            "seller_id": seller,
            "project_version": 1,
            "cover_letter": "I have done this before; here is my plan. " * 5,
            "price": {"type": "fixed", "amount": 240_000, "currency": "USD"},
            "duration_days": 30,
        }
        correlation = str(uuid.uuid4())
        meta = EventMetadata(correlation, correlation, seller, "bidding")
        event = registry.new_event("ProposalSubmitted", data, meta)
        yield RecordedEvent(
            event_id=event.event_id,
            type=event.type,
            schema_version=event.schema_version,
            data=event.data,
            metadata=meta,
            stream=f"proposal-{proposal}",
            revision=0,
            position=n + 1,
            recorded_at=datetime.now(UTC),
        )


def sampled(directory: Path | None, label: str) -> AbstractContextManager[None]:
    """py-spy over this process while the block runs (``--profile``)."""
    return py_spy({"consumer": os.getpid()}, directory, label)


def run(service: type, config: dict[str, Any], count: int, profile: Path | None) -> float:
    """Events per second ``service`` handled, catching up with ``count`` queued ones."""
    global handled
    container = ServiceContainer(service, config)
    container.start()  # declares its queue and bindings
    container.stop()
    publisher = AmqpPublisher(config["AMQP_URI"])
    for event in proposals(count):
        publisher.publish(event)
    publisher.close()
    handled = 0
    container = ServiceContainer(service, config)
    started = time.perf_counter()
    with sampled(profile, service.name):
        container.start()
        deadline = started + 600
        while handled < count:
            if time.perf_counter() > deadline:
                sys.exit(f"{service.name} handled {handled} of {count} in 600 s")
            eventlet.sleep(0.01)
        elapsed = time.perf_counter() - started
        container.stop()
    queue = f"evt-bidding-ProposalSubmitted--{service.name}.on_proposal"
    with Connection(config["AMQP_URI"]) as conn:
        for name in (queue, f"{queue}.delay", f"{queue}.dead"):
            conn.default_channel.queue_delete(name)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy raw stacks to DIR")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    load_all_event_schemas()
    broker = own_virtual_host(amqp_uri(), "bench-consumer")
    with fresh_postgres_database(postgres_server_url(), prefix="bench_consumer") as database:
        config = {"AMQP_URI": broker, "DATABASE_URL": database}
        floor = run(BareConsumer, config, args.events, args.profile)
        one_by_one = run(OneByOneConsumer, config, args.events, args.profile)
        learning = run(LearningConsumer, config, args.events, args.profile)
    print(f"\n{args.events:,} queued ProposalSubmitted, one consumer, catching up")
    print(f"{'consumer':52} {'events/s':>9} {'ms/event':>9} {'vs bare':>8}")
    for label, rate in (
        ("bare Nameko event handler (the floor)", floor),
        ("learning, a worker and a transaction each (before)", one_by_one),
        ("learning in batches (@learns, shared.facts)", learning),
    ):
        print(f"{label:52} {rate:9.0f} {1000 / rate:9.2f} {rate / floor:7.2f}x")


if __name__ == "__main__":
    main()
