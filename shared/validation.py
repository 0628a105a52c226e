"""Loading input with marshmallow, failing with the project's InvalidInput."""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import Schema, ValidationError

from shared.errors import InvalidInput, NotFound


def load(schema: Schema, data: Any, partial: bool = False) -> dict[str, Any]:
    """Validated, deserialised input; InvalidInput with per-field messages if not."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "expected a JSON object", {"fields": {"_schema": ["Expected an object."]}}
        )
    try:
        loaded: dict[str, Any] = schema.load(data, partial=partial)
        return loaded
    except ValidationError as exc:
        raise InvalidInput("the input is not valid", {"fields": exc.normalized_messages()}) from exc


def known_id(value: Any, what: str) -> str:
    """An id as its stream knows it; anything that is not a UUID names nothing (404)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no such {what}") from None
    return str(value)
