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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from marshmallow import Schema, fields, validate
from sqlalchemy.engine import Connection, Row

from shared.errors import InvalidInput
from shared.jsonready import aware

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
BAD_CURSOR = InvalidInput("the cursor is not valid", {"fields": {"cursor": ["Not a cursor."]}})


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
        raise BAD_CURSOR from None
    if not isinstance(value, dict):
        raise BAD_CURSOR
    return value


def newest_first(
    conn: Connection,
    query: sa.Select[Any],
    at: sa.ColumnElement[datetime],
    key: sa.ColumnElement[str],
    limit: int,
    cursor: str | None,
    key_name: str = "id",
) -> tuple[Sequence[Row[Any]], str | None]:
    """One page of ``query``'s rows, newest first by ``(at, key)`` (the key
    breaks ties), and the cursor of the next page, or None on the last one.
    The cursor names the last row seen, so rows added meanwhile never shift a page."""
    after = decode_cursor(cursor)
    if after is not None:
        try:
            last_at, last_key = datetime.fromisoformat(after["at"]), str(after[key_name])
        except (KeyError, TypeError, ValueError):
            raise BAD_CURSOR from None
        query = query.where(sa.or_(at < last_at, sa.and_(at == last_at, key < last_key)))
    rows = conn.execute(query.order_by(at.desc(), key.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    last = page[-1]._mapping
    return page, encode_cursor({"at": aware(last[at]).isoformat(), key_name: last[key]})


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    return type(
        f"{item_schema.__name__.removesuffix('Response')}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
    )
