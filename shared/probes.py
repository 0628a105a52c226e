"""Is a dependency reachable? Each probe returns None if so, else the reason."""

from __future__ import annotations

import sqlalchemy as sa
from kombu import Connection


def reachable_postgres(url: str) -> str | None:
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def reachable_amqp(uri: str) -> str | None:
    try:
        with Connection(uri, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return str(exc)
    return None
