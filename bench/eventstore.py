"""Event store throughput on PostgreSQL, side by side with `eventsourcing`.

Both systems write to fresh databases on the same server with durable commits
(the server's synchronous_commit is printed). Workloads:

* single-event appends, 1 writer and 16 concurrent writers (each to its own stream)
* appends in batches of 10 and of 100 events (1 writer)
* reading every event in global order

Run: ``make bench`` or ``.venv/bin/python bench/eventstore.py [--scale 1.0]``.
Targets (issue 2): >= 5x eventsourcing with 16 writers, >= 1x with 1 writer,
>= 1.5x on read-all.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from shared.eventstore import EventMetadata, NewEvent, StreamState
from shared.eventstore.sql import SqlEventStore
from shared.testing import fresh_postgres_database, postgres_server_url

META = EventMetadata.root("bench-user", source="bench")


def payload(i: int) -> dict[str, object]:
    return {
        "project_id": str(uuid.uuid4()),
        "title": f"Build a marketplace landing page #{i}",
        "budget": {"amount": 150_000 + i, "currency": "USD"},
        "skills": ["python", "postgresql"],
    }


@dataclass
class Figures:
    single_1: float
    single_16: float
    batch_10: float
    batch_100: float
    read_all: float
    read_count: int


def run_threads(writers: int, work: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


class Ours:
    name = "ours"

    def __init__(self, url: str) -> None:
        self.store = SqlEventStore(url, pool_size=20)  # 16 writers

    def appender(self) -> Callable[[str, list[dict[str, object]]], None]:
        revisions: dict[str, int] = {}

        def append(stream: str, datas: list[dict[str, object]]) -> None:
            expected = revisions.get(stream, StreamState.NO_STREAM)
            result = self.store.append(
                stream, [NewEvent("ProjectPosted", d, META) for d in datas], expected
            )
            revisions[stream] = result.last_revision

        return append

    def read_all(self) -> int:
        return sum(1 for _ in self.store.read_all())


class EventSourcingLib:
    name = "eventsourcing"

    def __init__(self, url: str) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        u = sa.make_url(url)
        self.datastore = PostgresDatastore(
            dbname=u.database or "",
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password or "",
            pool_size=20,
        )
        self.recorder = PostgresApplicationRecorder(self.datastore)
        self.recorder.create_table()

    def appender(self) -> Callable[[str, list[dict[str, object]]], None]:
        from eventsourcing.persistence import StoredEvent

        versions: dict[str, tuple[uuid.UUID, int]] = {}

        def append(stream: str, datas: list[dict[str, object]]) -> None:
            originator, version = versions.get(stream, (uuid.uuid4(), 0))
            stored = []
            for d in datas:
                version += 1
                stored.append(
                    StoredEvent(
                        originator_id=originator,
                        originator_version=version,
                        topic="bench:ProjectPosted",
                        state=json.dumps({"data": d, "metadata": META.to_dict()}).encode(),
                    )
                )
            self.recorder.insert_events(stored)
            versions[stream] = (originator, version)

        return append

    def read_all(self) -> int:
        count, start = 0, 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=1000)
            count += len(page)
            if len(page) < 1000:
                return count
            start = page[-1].id + 1


def measure(system: Ours | EventSourcingLib, scale: float) -> Figures:
    n_single = int(600 * scale)
    per_writer = int(250 * scale)
    n_batches_10 = int(200 * scale)
    n_batches_100 = int(40 * scale)

    append = system.appender()
    start = time.perf_counter()
    for i in range(n_single):
        append("single-0", [payload(i)])
    single_1 = n_single / (time.perf_counter() - start)

    appenders = [system.appender() for _ in range(16)]

    def writer(w: int) -> None:
        for i in range(per_writer):
            appenders[w](f"conc-{w}", [payload(i)])

    single_16 = 16 * per_writer / run_threads(16, writer)

    start = time.perf_counter()
    for i in range(n_batches_10):
        append(f"batch10-{i % 20}", [payload(i * 10 + k) for k in range(10)])
    batch_10 = n_batches_10 * 10 / (time.perf_counter() - start)

    start = time.perf_counter()
    for i in range(n_batches_100):
        append(f"batch100-{i % 5}", [payload(i * 100 + k) for k in range(100)])
    batch_100 = n_batches_100 * 100 / (time.perf_counter() - start)

    system.read_all()  # warm caches equally for both systems
    read_all, count = 0.0, 0
    for _ in range(3):  # best of three: one pass is short and noisy
        start = time.perf_counter()
        count = system.read_all()
        read_all = max(read_all, count / (time.perf_counter() - start))
    return Figures(single_1, single_16, batch_10, batch_100, read_all, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1)))
    args = parser.parse_args()
    server = postgres_server_url()
    engine = sa.create_engine(server)
    with engine.connect() as conn:
        sync = conn.execute(sa.text("SHOW synchronous_commit")).scalar()
        fsync = conn.execute(sa.text("SHOW fsync")).scalar()
        version = conn.execute(sa.text("SHOW server_version")).scalar()
    engine.dispose()
    print(f"PostgreSQL {version}, synchronous_commit={sync}, fsync={fsync}, scale={args.scale}")

    results: dict[str, Figures] = {}
    for cls in (EventSourcingLib, Ours):
        with fresh_postgres_database(server, prefix="mp_bench") as url:
            system = cls(url)
            results[cls.name] = measure(system, args.scale)
            if isinstance(system, Ours):
                system.store.close()
            else:
                system.datastore.close()

    ours, lib = results["ours"], results["eventsourcing"]
    rows = [
        ("single-event appends/s, 1 writer", "single_1", 1.0),
        ("single-event appends/s, 16 writers", "single_16", 5.0),
        ("events/s in batches of 10", "batch_10", None),
        ("events/s in batches of 100", "batch_100", None),
        ("read-all events/s", "read_all", 1.5),
    ]
    print(f"{'workload':38} {'eventsourcing':>14} {'ours':>10} {'ratio':>7}  target")
    failed = []
    for label, attr, target in rows:
        a, b = getattr(lib, attr), getattr(ours, attr)
        ratio = b / a
        verdict = (
            "" if target is None else (f">= {target}x " + ("ok" if ratio >= target else "MISS"))
        )
        if target is not None and ratio < target:
            failed.append(label)
        print(f"{label:38} {a:14,.0f} {b:10,.0f} {ratio:6.2f}x  {verdict}")
    print(
        f"(read-all counted {ours.read_count:,} events in ours, "
        f"{lib.read_count:,} in eventsourcing)"
    )
    if failed:
        print("targets missed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
