"""structlog configuration, in one place for every process.

JSON lines in production, readable output in development. Standard-library
records (Nameko, kombu, SQLAlchemy) go through the same processors, so they
also carry the context bound with ``structlog.contextvars`` — the request's
correlation id above all.

No line carries a credential: every rendered line has the password of any URI
in it (the part between ``user:`` and ``@host``) replaced
(``redact_credentials``), and code that names a URI on purpose passes it
through ``redact_uri`` first.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from shared.config import settings

REDACTED = "***"
_CREDENTIALS = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s\"']*):[^\s\"']*@")
"""A URI's scheme and user, then its password: anything up to the last ``@``
before a space or a quote, so a password with a ``/`` or an ``@`` in it is still
caught (at worst a little more than the password goes)."""


def redact_credentials(text: str) -> str:
    """A text with the password of every URI in it replaced by ``***``."""
    if "://" not in text:
        return text
    return _CREDENTIALS.sub(rf"\g<prefix>:{REDACTED}@", text)


def redact_uri(uri: str) -> str:
    """A database or broker URL as it may be logged, printed or put in an error
    message: its password (if any) replaced by ``***``. (Not ``urlsplit``: a
    password with an unescaped ``/`` in it would move its idea of the host.)"""
    return redact_credentials(uri)


def _redact_rendered(_logger: Any, _method: str, rendered: Any) -> Any:
    """The last processor, after the renderer: whatever a line holds (a value,
    a nested one, an exception's message in its traceback), its credentials go."""
    return redact_credentials(rendered) if isinstance(rendered, str) else rendered


def configure_logging(
    service: str, log_format: str | None = None, level: str | None = None
) -> None:
    cfg = settings()
    log_format = log_format or cfg.log_format
    level = (level or cfg.log_level).upper()

    def add_service(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
            _redact_rendered,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_expected_errors_without_traceback)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "pika", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _expected_errors_without_traceback(record: logging.LogRecord) -> bool:
    """Nameko logs an expected exception (a refused request) with its traceback;
    the message says everything, the traceback is noise."""
    if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
        record.exc_info = None
        record.exc_text = None
    return True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
