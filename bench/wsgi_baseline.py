"""What a team would build instead of the marketplace's write path, for
bench/marketplace.py: a plain WSGI handler that inserts the project row and
an outbox row in one PostgreSQL transaction, run by gunicorn with 2 sync
workers (one per core). Run as ``gunicorn -w 2 bench.wsgi_baseline:app`` with
BASELINE_DATABASE_URL set; ``create_tables`` makes its two tables."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psycopg2
import psycopg2.extensions

TABLES = """
CREATE TABLE IF NOT EXISTS baseline_projects (
    project_id uuid PRIMARY KEY,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS baseline_outbox (
    position bigserial PRIMARY KEY,
    event_type text NOT NULL,
    payload jsonb NOT NULL
);
"""

_connection: psycopg2.extensions.connection | None = None


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def create_tables(url: str) -> None:
    with psycopg2.connect(_dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(TABLES)


def _db() -> psycopg2.extensions.connection:
    """One connection per worker process, opened after gunicorn forked it."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg2.connect(_dsn(os.environ["BASELINE_DATABASE_URL"]))
    return _connection


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"] != "/projects":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(size) or b"{}")
    project_id = str(uuid.uuid4())
    conn = _db()
    with conn, conn.cursor() as cur:  # one transaction: the row and its outbox entry
        cur.execute(
            "INSERT INTO baseline_projects (project_id, body) VALUES (%s, %s)",
            (project_id, json.dumps(body)),
        )
        cur.execute(
            "INSERT INTO baseline_outbox (event_type, payload) VALUES (%s, %s)",
            ("ProjectPosted", json.dumps({"project_id": project_id, **body})),
        )
    answer = json.dumps({"project_id": project_id}).encode()
    start_response(
        "201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    )
    return [answer]
