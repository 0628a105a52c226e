"""The cursor pagination convention of every list.

Services build the pages; the gateway validates the query and documents it.

Requests: ``?limit=N&cursor=C`` (limit 1-100, default 20). Responses:
``{"items": [...], "next_cursor": C | null}``. A cursor is opaque to clients:
URL-safe base64 of JSON naming the last item seen, so pages stay stable
while items are added.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from marshmallow import Schema, fields, validate

from shared.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuery(Schema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidInput(
            "the cursor is not valid", {"fields": {"cursor": ["Not a cursor."]}}
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput("the cursor is not valid", {"fields": {"cursor": ["Not a cursor."]}})
    return value


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    return type(
        f"{item_schema.__name__.removesuffix('Response')}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
    )
