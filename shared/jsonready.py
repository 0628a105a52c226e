"""Turning values read from databases and schemas into JSON-ready ones, one way."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def json_ready(value: Any) -> Any:
    """Datetimes and dates as ISO 8601 (datetimes in UTC), UUIDs as strings,
    containers converted throughout."""
    if isinstance(value, datetime):
        return aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
