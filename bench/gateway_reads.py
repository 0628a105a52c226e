"""What an HTTP request that makes one Nameko RPC costs, and what the gateway's
read path (a local view, no RPC) achieves, measured side by side with wrk.

Runs, each as its own process: a bare Nameko ``@http`` handler returning a
constant (the baseline), the same handler making one RPC to another process,
and the real gateway and identity service on PostgreSQL. Prints requests/s and
p50/p99 latency at 20 connections, and each figure's ratio to the baseline.

Run: ``make bench`` or ``.venv/bin/python bench/gateway_reads.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import requests

from shared.signing import new_keys_environment
from shared.testing import amqp_uri, free_port, fresh_postgres_database, postgres_server_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def wrk(
    url: str, seconds: int, headers: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    args = ["wrk", "-t2", "-c20", f"-d{seconds}s", "--latency", url]
    for key, value in (headers or {}).items():
        args[1:1] = ["-H", f"{key}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, percentile("50"), percentile("99")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 10)))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    broker = amqp_uri()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as var:
        db = stack.enter_context(fresh_postgres_database(postgres_server_url(), prefix="mp_bench"))
        http_port, gateway_port = free_port(), free_port()
        env = dict(
            os.environ,
            VAR_DIR=var,
            EVENT_STORE_URL=db,
            AMQP_URI=broker,
            LOG_LEVEL="WARNING",
            GATEWAY_PORT=str(gateway_port),
            IDENTITY_DATABASE_URL=db,
            GATEWAY_DATABASE_URL=db,
            ENVIRONMENT="production",
            JWT_SECRET="bench-" + "s" * 40,
            LOG_FORMAT="json",
            **new_keys_environment(),  # production refuses to make up its own
        )
        processes = [
            [sys.executable, str(ROOT / "bench/rpc_baseline.py"), "echo", broker],
            [sys.executable, str(ROOT / "bench/rpc_baseline.py"), "http", broker, str(http_port)],
            [str(BIN / "marketplace-service"), "identity"],
            [str(BIN / "marketplace-service"), "gateway"],
        ]
        for command in processes:
            process = subprocess.Popen(command, env=env, cwd=ROOT, **quiet)
            stack.callback(process.wait, 15)
            stack.callback(process.terminate)
        base = f"http://127.0.0.1:{gateway_port}"
        wait_http(f"http://127.0.0.1:{http_port}/bare")
        wait_http(f"{base}/health/live")
        time.sleep(2)  # identity's consumers and the gateway's projection start

        email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
        password = "correct horse battery"
        api = f"{base}/api/v1"
        user = requests.post(
            f"{api}/auth/register",
            json={"email": email, "password": password, "roles": ["seller"]},
            timeout=30,
        ).json()
        token = requests.post(
            f"{api}/auth/login", json={"email": email, "password": password}, timeout=30
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        requests.patch(
            f"{api}/users/{user['user_id']}/seller-profile",
            json={"headline": "Benchmarks", "skills": ["python", "go"], "bio": "x" * 500},
            headers=auth,
            timeout=30,
        ).raise_for_status()
        profile_url = f"{api}/users/{user['user_id']}/profile"
        deadline = time.monotonic() + 30
        while requests.get(profile_url, timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                sys.exit("the gateway's profile view never caught up")
            time.sleep(0.2)

        rows = [
            ("bare Nameko @http handler (baseline)", f"http://127.0.0.1:{http_port}/bare", None),
            ("@http handler making one RPC", f"http://127.0.0.1:{http_port}/rpc", None),
            ("gateway GET /health/live", f"{base}/health/live", None),
            ("gateway GET profile (public, local view)", profile_url, None),
            ("gateway GET /me (JWT + local view)", f"{api}/me", auth),
        ]
        results = [(label, *wrk(url, args.seconds, headers)) for label, url, headers in rows]
    baseline = results[0][1]
    print(f"wrk -t2 -c20 -d{args.seconds}s, every process on this machine's 2 cores")
    print(f"{'endpoint':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
    for label, rps, p50, p99 in results:
        print(f"{label:44} {rps:8.0f} {p50:8.2f} {p99:8.2f} {rps / baseline:7.2f}x")


if __name__ == "__main__":
    main()
