"""The identity process's peak memory while 20 people sign up at once.

Each argon2id hash takes 64 MiB while it runs. The identity pod's limit is
384 MiB (deploy/k8s/base/services.yaml) and its ``PASSWORD_HASH_CONCURRENCY``
2 (deploy/k8s/base/config.yaml). The bench starts every process of the
``Procfile`` on a fresh PostgreSQL event store, resets the identity process's
peak resident set (``/proc/<pid>/clear_refs``), sends 20 sign-ups at once
through the gateway, each from its own client address, and prints identity's
peak resident set (``VmHWM``) and the sign-ups' times. The same-run baseline
is the same burst with the bound at 20, which is what eventlet's thread pool
ran at once before the bound existed.

Run: ``PYTHONPATH=. .venv/bin/python bench/sign_up_memory.py [--sign-ups 20] [--bounds 2,20]``
(``TEST_POSTGRES_URL`` and ``TEST_AMQP_URI`` name the servers, as for the tests).

Measured 2026-12-02 on the 2-core machine (one run):

| hashes at once | RSS before | peak RSS | of the 384 MiB limit | burst | slowest sign-up |
|---|---|---|---|---|---|
| 2 (the manifests' bound) | 103 MiB | 233 MiB | 61% | 5.2 s | 5.06 s |
| 20 (no bound: eventlet's pool) | 103 MiB | 599 MiB | 156% (OOM-killed in a pod) | 5.3 s | 5.22 s |

On 2 cores the bound costs no time: the hashes are CPU-bound either way.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from shared.testing import amqp_uri, fresh_postgres_database, postgres_server_url
from tests.integration.stack import Stack
from tests.integration.test_identity_api import PASSWORD
from tests.integration.test_journeys import stack_env

POD_LIMIT_MIB = 384


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def sign_up(url: str, n: int) -> tuple[int, float]:
    started = time.perf_counter()
    answer = requests.post(
        f"{url}/api/v1/auth/register",
        json={
            "email": f"burst-{uuid.uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "roles": ["seller"],
        },
        headers={"X-Forwarded-For": f"10.77.{n // 250}.{n % 250 + 1}"},
        timeout=120,
    )
    return answer.status_code, time.perf_counter() - started


def one_burst(directory: Path, bound: int, sign_ups: int) -> dict[str, float]:
    with fresh_postgres_database(postgres_server_url()) as event_store:
        env = stack_env(
            directory,
            amqp_uri(),
            review_seconds=60,
            EVENT_STORE_URL=event_store,
            PASSWORD_HASH_CONCURRENCY=str(bound),
            TRUSTED_PROXY_HOPS="1",
        )
        stack = Stack(directory, env)
        stack.start_all()
        try:
            pid = stack.processes["identity"].pid
            sign_up(stack.url, 10_000)  # one first: imports and pools warm
            before = status_kib(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak := now
            started = time.perf_counter()
            with ThreadPoolExecutor(sign_ups) as pool:
                results = list(pool.map(lambda n: sign_up(stack.url, n), range(sign_ups)))
            elapsed = time.perf_counter() - started
            peak = status_kib(pid, "VmHWM")
        finally:
            stack.stop_all()
    statuses = sorted({status for status, _ in results})
    if statuses != [201]:
        raise SystemExit(f"sign-ups answered {statuses}")
    times = sorted(t for _, t in results)
    return {
        "before_mib": before / 1024,
        "peak_mib": peak / 1024,
        "elapsed_s": elapsed,
        "median_s": statistics.median(times),
        "slowest_s": times[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ups", type=int, default=20)
    parser.add_argument("--bounds", default="2,20", help="PASSWORD_HASH_CONCURRENCY values")
    args = parser.parse_args()
    print(
        f"{args.sign_ups} sign-ups at once; identity pod limit {POD_LIMIT_MIB} MiB\n"
        f"{'hashes at once':>15} {'RSS before':>11} {'peak RSS':>9} {'of limit':>9} "
        f"{'burst':>7} {'median':>7} {'slowest':>8}"
    )
    for bound in (int(b) for b in args.bounds.split(",")):
        with tempfile.TemporaryDirectory(prefix="signup-bench-") as directory:
            r = one_burst(Path(directory), bound, args.sign_ups)
        print(
            f"{bound:>15} {r['before_mib']:>8.0f} MiB {r['peak_mib']:>5.0f} MiB "
            f"{r['peak_mib'] / POD_LIMIT_MIB:>8.0%} {r['elapsed_s']:>6.1f}s "
            f"{r['median_s']:>6.2f}s {r['slowest_s']:>7.2f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
