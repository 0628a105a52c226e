"""How long a retried ``Idempotency-Key`` waits after its gateway died mid-request.

Runs the scenario of ``tests/integration/test_idempotency_crash.py``: every
process of the ``Procfile``, a POST held by its stopped service, the gateway
``kill -9``'d and started again, then the same request with the same key.
Prints, per run, the seconds from the gateway's first ready answer to the
retry's answer, and how many 409 "in progress" answers came first.

Run: ``.venv/bin/python bench/idempotency_takeover.py [--runs 3] [--gateway-db postgres|sqlite]``
(``TEST_POSTGRES_URL`` and ``TEST_AMQP_URI`` name the servers, as for the tests).

Measured 2026-12-02 on the 2-core machine, 3 runs each (gateway restart to
ready: about 1.5 s):

| gateway database | before: a 60 s pending timeout | after: a lock that dies with its gateway |
|---|---|---|
| PostgreSQL | 57.9-58.7 s (936-1,009 answers "in progress") | 0.12-0.41 s (none) |
| SQLite | 58.5-58.6 s (2 runs) | 0.03-0.28 s (none) |

"Before" is the same scenario against ``gateway/idempotency.py`` and
``shared/config.py`` of commit 2bf8d7b, with ``IDEMPOTENCY_PENDING_SECONDS``
at its default (60): the key is taken over 60 s after the first attempt began.
"After" is the time the retried request itself takes on a fresh gateway.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from shared.testing import amqp_uri, fresh_postgres_database, postgres_server_url
from tests.integration.test_idempotency_crash import crash_and_retry, crash_stack


def one_run(directory: Path, gateway: str) -> float:
    server = postgres_server_url()
    with fresh_postgres_database(server) as event_store, fresh_postgres_database(server) as pg:
        sqlite = f"sqlite:///{directory / 'var' / 'gateway.sqlite'}"
        gateway_db = pg if gateway == "postgres" else sqlite
        stack = crash_stack(directory, amqp_uri(), event_store, gateway_db)
        stack.start_all()
        try:
            result = crash_and_retry(stack, gateway_db, event_store)
        finally:
            stack.stop_all()
    if result.status != 201:
        sys.exit(f"the retry was answered {result.status}: {result.body}")
    print(
        f"  ready -> answer {result.ready_to_answer:6.3f} s   crash -> answer "
        f"{result.crash_to_answer:5.1f} s   409s first: {result.in_progress}",
        flush=True,
    )
    return result.ready_to_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gateway-db", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    print(f"gateway database: {args.gateway_db}")
    delays = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="idem-bench-") as directory:
            delays.append(one_run(Path(directory), args.gateway_db))
    print(
        f"retry after the gateway is ready: median {statistics.median(delays):.3f} s, "
        f"max {max(delays):.3f} s over {len(delays)} runs"
    )


if __name__ == "__main__":
    main()
