"""Loading input with marshmallow, failing with the project's InvalidInput."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from shared.errors import InvalidInput


def load(schema: Schema, data: Any, partial: bool = False) -> dict[str, Any]:
    """Validated, deserialised input; InvalidInput with per-field messages if not."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "expected a JSON object", {"fields": {"_schema": ["Expected an object."]}}
        )
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise InvalidInput("the input is not valid", {"fields": exc.normalized_messages()}) from exc
