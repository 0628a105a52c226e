"""Is a dependency reachable? Each probe returns None if so, else the reason."""

from __future__ import annotations

from kombu.connection import Connection

from shared.sql import create_sql_engine, ping


def reachable_postgres(url: str) -> str | None:
    try:
        ping(create_sql_engine(url, pool_size=1))
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


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.probes amqp``: say whether the configured broker answers."""
    import sys

    from shared.config import settings
    from shared.logging import redact_uri

    what = (argv if argv is not None else sys.argv[1:]) or ["amqp"]
    cfg = settings()
    if "amqp" in what:
        reason = reachable_amqp(cfg.amqp_uri)
        if reason:
            print(
                f"RabbitMQ is not reachable at {redact_uri(cfg.amqp_uri)}: {reason}\n"
                "Start it with 'rabbitmq-server -detached' (Debian: apt-get install "
                "rabbitmq-server), or point AMQP_URI at a running broker.",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
