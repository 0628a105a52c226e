"""``marketplace-events``: replay the marketplace's event streams, for analysts and operators.

Commands: ``init``, ``streams``, ``read``, ``export``, ``follow``, ``publish``,
``rebuild`` and ``verify`` (``marketplace-events COMMAND --help`` for each).
The event store is the one the services use (``EVENT_STORE_URL``), or
``--store URL``. Every envelope this tool writes has its data upcast to the
current schema version and its sensitive fields redacted.

Exit codes: 0 done; 1 ``verify`` found differences; 2 bad arguments (a
malformed range, a live exchange without its flag); 3 the event store, a
database or the broker could not be reached; 4 something named does not exist
(stream, category, projection).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from importlib.metadata import entry_points  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TextIO  # noqa: E402

import orjson  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from pika.exceptions import AMQPError  # noqa: E402

from shared.config import settings  # noqa: E402
from shared.eventstore import (  # noqa: E402
    EventStore,
    EventStoreUnavailable,
    RecordedEvent,
    StreamNotFound,
    open_event_store,
)
from shared.eventstore.sql import SqlEventStore  # noqa: E402
from shared.logging import redact_uri  # noqa: E402
from shared.personal import unwrap  # noqa: E402
from shared.projection import Projection, ProjectionRunner, single_active  # noqa: E402
from shared.schemas import load_all_event_schemas, registry  # noqa: E402
from shared.sql import create_sql_engine, temporary_database  # noqa: E402

OK, DIFFERENT, USAGE, UNAVAILABLE, NOT_FOUND = 0, 1, 2, 3, 4
PROJECTIONS_GROUP = "marketplace.projections"
LIVE_SERVICES = (
    "identity",
    "projects",
    "bidding",
    "contracts",
    "escrow",
    "messaging",
    "reputation",
    "gateway",
)
COLUMNS = [
    "event_id",
    "event_type",
    "schema_version",
    "stream",
    "revision",
    "position",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "actor_id",
    "source",
    "data",
]


class ToolError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- selecting events -------------------------------------------------------------


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--category", action="append", help="stream category (repeatable)")
    parser.add_argument("--type", dest="types", action="append", help="event type (repeatable)")
    parser.add_argument("--from-position", type=int, help="first global position (inclusive)")
    parser.add_argument("--to-position", type=int, help="last global position (inclusive)")
    parser.add_argument("--since", type=parse_time, help="recorded at or after (ISO 8601)")
    parser.add_argument("--until", type=parse_time, help="recorded before (ISO 8601)")


def check_filters(store: EventStore, args: argparse.Namespace) -> None:
    positions = (args.from_position, args.to_position)
    if None not in positions and positions[0] > positions[1]:
        raise ToolError("--from-position is after --to-position", USAGE)
    if args.since and args.until and args.since >= args.until:
        raise ToolError("--since is not before --until", USAGE)
    backend = unwrap(store)
    if args.category and isinstance(backend, SqlEventStore):
        known = {c for c, *_ in category_summaries(backend)}
        unknown = sorted(set(args.category) - known)
        if unknown:
            raise ToolError(
                f"unknown category {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                NOT_FOUND,
            )


def selected(store: EventStore, args: argparse.Namespace) -> Iterator[RecordedEvent]:
    """The events the filters select, in global order, streamed."""
    for event in store.read_all(
        from_position=args.from_position, categories=args.category, event_types=args.types
    ):
        if args.to_position is not None and event.position > args.to_position:
            return
        if args.since and event.recorded_at < args.since:
            continue
        if args.until and event.recorded_at >= args.until:
            continue
        yield event


def flat(event: RecordedEvent) -> dict[str, Any]:
    """One export row: the envelope, metadata ids as columns, data as JSON text."""
    envelope = registry.envelope(event) if registry.knows(event.type) else event.envelope()
    meta = envelope.pop("metadata")
    return {
        **{k: envelope[k] for k in COLUMNS if k in envelope and k != "data"},
        "correlation_id": meta.get("correlation_id", ""),
        "causation_id": meta.get("causation_id", ""),
        "actor_id": meta.get("actor_id", ""),
        "source": meta.get("source", ""),
        "data": orjson.dumps(envelope["data"]).decode(),
    }


def envelope_line(event: RecordedEvent) -> bytes:
    envelope = registry.envelope(event) if registry.knows(event.type) else event.envelope()
    return orjson.dumps(envelope) + b"\n"


# -- writers -------------------------------------------------------------------------


class JsonLinesWriter:
    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, event: RecordedEvent) -> None:
        self.out.write(envelope_line(event))

    def close(self) -> None:
        self.out.flush()


class CsvWriter:
    def __init__(self, out: Any) -> None:
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self.writer = csv.DictWriter(self.text, fieldnames=COLUMNS)
        self.writer.writeheader()

    def write(self, event: RecordedEvent) -> None:
        self.writer.writerow(flat(event))

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


class ParquetWriter:
    """Row groups of ``ROWS`` rows: memory stays constant whatever the log's size."""

    ROWS = 10_000

    def __init__(self, out: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema(
            [
                (
                    name,
                    pa.int64()
                    if name in ("schema_version", "revision", "position")
                    else pa.string(),
                )
                for name in COLUMNS
            ]
        )
        self.writer = pq.ParquetWriter(out, self.schema)
        self.rows: list[dict[str, Any]] = []

    def write(self, event: RecordedEvent) -> None:
        self.rows.append(flat(event))
        if len(self.rows) >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


WRITERS: dict[str, Callable[[Any], Any]] = {
    "jsonl": JsonLinesWriter,
    "csv": CsvWriter,
    "parquet": ParquetWriter,
}


# -- commands ------------------------------------------------------------------------


def category_summaries(store: SqlEventStore, category: str | None = None) -> list[tuple[Any, ...]]:
    e = store.events.c
    key = e.stream_name if category else e.category
    query = (
        sa.select(
            key,
            sa.func.count(),
            sa.func.min(e.position),
            sa.func.max(e.position),
            sa.func.min(e.recorded_at),
            sa.func.max(e.recorded_at),
        )
        .group_by(key)
        .order_by(key)
    )
    if category:
        query = query.where(e.category == category)
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def scanned_summaries(store: EventStore, category: str | None) -> list[tuple[Any, ...]]:
    """For stores without SQL: one pass over the log."""
    seen: dict[str, list[Any]] = {}
    for event in store.read_all(categories=[category] if category else None):
        key = event.stream if category else event.category
        row = seen.setdefault(
            key, [key, 0, event.position, event.position, event.recorded_at, event.recorded_at]
        )
        row[1] += 1
        row[3], row[5] = event.position, event.recorded_at
    return [tuple(v) for _, v in sorted(seen.items())]


def cmd_streams(store: EventStore, args: argparse.Namespace, out: TextIO) -> int:
    backend = unwrap(store)
    rows = (
        category_summaries(backend, args.category)
        if isinstance(backend, SqlEventStore)
        else scanned_summaries(store, args.category)
    )
    if args.category and not rows:
        raise ToolError(f"unknown category {args.category}", NOT_FOUND)
    label = "stream" if args.category else "category"
    out.write(
        f"{label:60} {'events':>9} {'first position':>16} {'last position':>16}"
        "  first / last recorded\n"
    )
    for name, count, first, last, first_at, last_at in rows:
        out.write(
            f"{name:60} {count:9} {first:16} {last:16}"
            f"  {first_at.isoformat()} / {last_at.isoformat()}\n"
        )
    return OK


def cmd_read(store: EventStore, args: argparse.Namespace, out: Any) -> int:
    try:
        events = store.read_stream(args.stream, args.from_revision, args.backwards, args.limit)
    except StreamNotFound:
        raise ToolError(f"stream {args.stream!r} not found", NOT_FOUND) from None
    for event in events:
        out.write(envelope_line(event))
    return OK


def cmd_export(store: EventStore, args: argparse.Namespace, out: Any) -> int:
    check_filters(store, args)
    with ExitStack() as stack:
        target = out if args.output is None else stack.enter_context(open(args.output, "wb"))
        progress = None
        if args.output is not None:
            from tqdm import tqdm

            progress = stack.enter_context(
                tqdm(unit=" events", file=sys.stderr, desc=f"export {args.format}", mininterval=0.5)
            )
        writer = WRITERS[args.format](target)
        count = 0
        for event in selected(store, args):
            writer.write(event)
            count += 1
            if progress is not None:
                progress.update(1)
        writer.close()
    if args.output is not None:
        sys.stderr.write(f"{count} events written to {args.output}\n")
    return OK


def cmd_follow(store: EventStore, args: argparse.Namespace, out: Any) -> int:
    check_filters(store, args)
    checkpoint = args.from_position - 1 if args.from_position is not None else store.last_position()
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with store.subscribe(
        checkpoint=checkpoint, categories=args.category, event_types=args.types
    ) as sub:
        while not stopping:
            for event in sub.next_batch(500, timeout=0.5):
                if args.to_position is not None and event.position > args.to_position:
                    return OK
                out.write(envelope_line(event))
            out.flush()
    return OK


def cmd_publish(store: EventStore, args: argparse.Namespace, out: TextIO) -> int:
    from shared.relay import AmqpPublisher

    check_filters(store, args)
    live = {f"{name}.events" for name in LIVE_SERVICES}
    if args.exchange in live and not args.yes_into_live_exchange:
        raise ToolError(
            f"{args.exchange} is a live exchange the services consume; "
            "add --yes-into-live-exchange if you really mean to replay into it",
            USAGE,
        )
    publisher = AmqpPublisher(args.amqp_uri or settings().amqp_uri)
    interval = 1.0 / args.rate if args.rate else 0.0
    sent, started = 0, time.monotonic()
    try:
        for event in selected(store, args):
            publisher.publish(event, exchange=args.exchange, body=envelope_line(event).rstrip())
            sent += 1
            if interval:
                time.sleep(max(0.0, started + sent * interval - time.monotonic()))
    finally:
        publisher.close()
    out.write(f"{sent} events published to {args.exchange} with confirms\n")
    return OK


# -- projections ------------------------------------------------------------------


def known_projections() -> dict[str, tuple[str, Projection]]:
    """ "owner.name" -> (owner whose database holds it, projection), from entry points.
    The same projection may run in several owners (a service and the gateway)."""
    found = {}
    for entry in entry_points(group=PROJECTIONS_GROUP):
        owner, _, _ = entry.name.partition(".")
        found[entry.name] = (owner, entry.load()())
    return found


def chosen_projections(name: str) -> dict[str, tuple[str, Projection]]:
    """By "owner.name", or by name alone where only one owner runs it."""
    available = known_projections()
    if name == "all":
        return available
    if name in available:
        return {name: available[name]}
    matches = [full for full in available if full.partition(".")[2] == name]
    if len(matches) == 1:
        return {matches[0]: available[matches[0]]}
    if matches:
        raise ToolError(
            f"{name!r} runs in several places; name one of {', '.join(sorted(matches))}", USAGE
        )
    raise ToolError(
        f"unknown projection {name!r}; known: {', '.join(sorted(available)) or 'none'}",
        NOT_FOUND,
    )


def _progress_printer(name: str, out: TextIO) -> Callable[[int], None]:
    started = time.monotonic()

    def report(applied: int) -> None:
        rate = applied / max(time.monotonic() - started, 1e-6)
        out.write(f"\r{name}: {applied} events, {rate:,.0f} events/s")
        out.flush()

    return report


def cmd_rebuild(store: EventStore, args: argparse.Namespace, out: TextIO) -> int:
    for name, (owner, projection) in chosen_projections(args.projection).items():
        engine = create_sql_engine(args.database or settings().database_url(owner))
        runner = ProjectionRunner(projection, store, engine)
        with single_active(engine, f"projection:{name}", lambda: False, wait=False) as leader:
            if not leader:
                raise ToolError(
                    f"{name} is being run by a live process; stop its owner ({owner}) first", USAGE
                )
            started = time.monotonic()
            report = _progress_printer(name, sys.stderr)
            if args.resume:
                runner.prepare()
                applied = runner.catch_up(report)
            else:
                applied = runner.rebuild(report)
            elapsed = time.monotonic() - started
        sys.stderr.write("\n")
        out.write(
            f"{name}: {applied} events applied in {elapsed:.1f}s "
            f"({applied / max(elapsed, 1e-6):,.0f} events/s), checkpoint {runner.checkpoint()}\n"
        )
        engine.dispose()
    return OK


def table_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    key = list(table.primary_key.columns) or list(table.columns)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*key)).all()
    return [tuple(orjson.dumps(v, default=str).decode() for v in row) for row in rows]


@contextmanager
def scratch_database(live_url: str) -> Iterator[str]:
    """An empty database of the same kind, dropped afterwards."""
    if sa.make_url(live_url).get_backend_name() == "postgresql":
        server = (
            sa.make_url(live_url).set(database="postgres").render_as_string(hide_password=False)
        )
        with temporary_database(server, prefix="mp_verify") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'verify.sqlite'}"


VERIFY_ATTEMPTS = 5
"""A live view that moves while it is compared is compared again, this many times at most."""


def cmd_verify(store: EventStore, args: argparse.Namespace, out: TextIO) -> int:
    differences = 0
    for name, (owner, projection) in chosen_projections(args.projection).items():
        live_url = args.database or settings().database_url(owner)
        live = create_sql_engine(live_url)
        live_runner = ProjectionRunner(projection, store, live)
        for _ in range(VERIFY_ATTEMPTS):
            checkpoint = live_runner.checkpoint()
            found, report = _compare_with_rebuild(
                name, store, projection, live, live_url, checkpoint, args.show
            )
            if live_runner.checkpoint() == checkpoint:
                break  # the live view stood still while compared: the comparison holds
        else:
            found, report = 1, [f"{name}: the live view kept moving while it was compared\n"]
        live.dispose()
        out.writelines(report)
        differences += found
        out.write(
            f"{name}: {'differs' if found else 'equal to a rebuild'} (checkpoint {checkpoint})\n"
        )
    return DIFFERENT if differences else OK


def _compare_with_rebuild(
    name: str,
    store: EventStore,
    projection: Projection,
    live: sa.Engine,
    live_url: str,
    checkpoint: int | None,
    show: int,
) -> tuple[int, list[str]]:
    """How many rows differ between the live view and a rebuild up to
    ``checkpoint``, and the report lines that show them."""
    found, report = 0, []
    with scratch_database(live_url) as scratch_url:
        scratch = create_sql_engine(scratch_url)
        ProjectionRunner(projection, store, scratch).rebuild(until=checkpoint)
        for table in projection.metadata.sorted_tables:
            live_rows, fresh_rows = set(table_rows(live, table)), set(table_rows(scratch, table))
            only_live, only_fresh = live_rows - fresh_rows, fresh_rows - live_rows
            if only_live or only_fresh:
                found += len(only_live) + len(only_fresh)
                report.append(
                    f"{name}.{table.name}: {len(only_live)} rows only live, "
                    f"{len(only_fresh)} only rebuilt\n"
                )
                report += [f"  live:    {row}\n" for row in sorted(only_live)[:show]]
                report += [f"  rebuilt: {row}\n" for row in sorted(only_fresh)[:show]]
        scratch.dispose()
    return found, report


# -- entry point ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketplace-events",
        description=__doc__.split("\n\n")[1],
        epilog="Exit codes: 0 done, 1 verify found differences, 2 bad arguments, "
        "3 store/database/broker unreachable, 4 not found.",
    )
    parser.add_argument("--store", help="event store URL (default: EVENT_STORE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("init", help="create or upgrade the event store's schema (idempotent)")
    streams = commands.add_parser(
        "streams", help="categories (or one category's streams) with counts"
    )
    streams.add_argument("--category", help="list this category's streams instead")

    read = commands.add_parser("read", help="one stream's events as JSON lines")
    read.add_argument("stream")
    read.add_argument("--from-revision", type=int)
    read.add_argument("--backwards", action="store_true")
    read.add_argument("--limit", type=int)

    export = commands.add_parser("export", help="selected events as JSON lines, CSV or Parquet")
    add_filters(export)
    export.add_argument("--format", choices=sorted(WRITERS), default="jsonl")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")

    follow = commands.add_parser("follow", help="the live tail, until interrupted")
    add_filters(follow)

    publish = commands.add_parser("publish", help="replay selected events into a RabbitMQ exchange")
    add_filters(publish)
    publish.add_argument("--exchange", required=True)
    publish.add_argument("--rate", type=float, help="at most this many events per second")
    publish.add_argument("--amqp-uri", help="broker (default: AMQP_URI)")
    publish.add_argument("--yes-into-live-exchange", action="store_true")

    for name, helptext in (
        ("rebuild", "reset and replay a projection"),
        ("verify", "compare a projection with a fresh rebuild"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("projection", help="a projection's name, or all")
        command.add_argument(
            "--database", help="the projection's database URL (default: its owner's)"
        )
        if name == "rebuild":
            command.add_argument(
                "--resume", action="store_true", help="continue an interrupted rebuild"
            )
        else:
            command.add_argument(
                "--show", type=int, default=5, help="differing rows to print per table"
            )
    return parser


def cmd_init(store: EventStore, args: argparse.Namespace, out: TextIO) -> int:
    """Opening a SQL store creates its tables and functions (idempotent DDL):
    what the migration Job runs before a deploy."""
    out.write(f"event store ready: last position {store.last_position()}\n")
    return OK


COMMANDS = {
    "init": cmd_init,
    "streams": cmd_streams,
    "read": cmd_read,
    "export": cmd_export,
    "follow": cmd_follow,
    "publish": cmd_publish,
    "rebuild": cmd_rebuild,
    "verify": cmd_verify,
}


def main(argv: Sequence[str] | None = None, stdout: Any = None) -> int:
    """``stdout``: a binary stream to write to instead of standard output."""
    args = build_parser().parse_args(argv)
    load_all_event_schemas()
    binary = args.command in ("read", "export", "follow")
    raw = stdout or sys.stdout.buffer
    text = None if binary else io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    out = raw if text is None else text
    url = args.store or settings().event_store_url
    shown = redact_uri(url)
    parsed = sa.make_url(url) if "://" in url else None
    sqlite_file = (
        parsed.database if parsed is not None and parsed.get_backend_name() == "sqlite" else None
    )
    if sqlite_file and not Path(sqlite_file).exists():
        sys.stderr.write(f"marketplace-events: no event store at {shown} (no such file)\n")
        return UNAVAILABLE
    try:
        store = open_event_store(url, timeout=settings().event_store_timeout)
        store.ping()
    except (EventStoreUnavailable, sa.exc.OperationalError, sa.exc.ArgumentError) as exc:
        sys.stderr.write(f"marketplace-events: cannot use the event store at {shown}: {exc}\n")
        return UNAVAILABLE
    except ValueError as exc:
        sys.stderr.write(f"marketplace-events: {exc}\n")
        return USAGE
    try:
        return COMMANDS[args.command](store, args, out)
    except ToolError as exc:
        sys.stderr.write(f"marketplace-events: {exc}\n")
        return exc.code
    except (EventStoreUnavailable, sa.exc.OperationalError, AMQPError, OSError) as exc:
        sys.stderr.write(f"marketplace-events: {exc}\n")
        return UNAVAILABLE
    finally:
        store.close()
        if text is not None:
            text.flush()
            text.detach()


if __name__ == "__main__":
    sys.exit(main())
