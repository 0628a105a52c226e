"""structlog configuration, in one place for every process.

JSON lines in production, readable output in development. Standard-library
records (Nameko, kombu, SQLAlchemy) go through the same processors, so they
also carry the context bound with ``structlog.contextvars`` — the request's
correlation id above all.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from shared.config import settings


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
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
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
