"""Answers to reads, kept for as long as the views they were read from stand still.

A read endpoint made of the views it reads (``@endpoint(reads=..., cached=True)``)
is answered from memory while none of those views has applied an event since
the answer was made. The key holds each view's checkpoint position, so an
answer is never older than the view itself: the first event a view applies
makes every answer read from it unreachable, and the LRU drops them.

Only a process that applies a view itself knows at once that it moved. A
replica that is not the view's active projection (``single_active``) sees no
position move, so it does not cache at all for that view.

The same key gives the answer's ``ETag``: a client that sends it back in
``If-None-Match`` gets ``304 Not Modified`` while the views stand still.

A route that can tell which events change its answer (``retired_by``, over
one view that ``remembers`` what it applied) keeps an answer while the view
moves: its key leaves that view's position out, the answer records the
position it was read at, and each later lookup asks ``retired_by`` about the
events applied since. A search is then retired by the projects it could
show, not by every project posted.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from nameko.extensions import DependencyProvider
from prometheus_client import Counter
from sqlalchemy.engine import Connection

from shared.config import settings
from shared.schemas import PublishedEvent

LOOKUPS = Counter(
    "gateway_response_cache_total",
    "Cacheable reads by outcome: hit, not_modified (304), miss, bypass (view applied "
    "elsewhere), retained (kept though its view moved: no event since retired it)",
    ["route", "outcome"],
)

#: What an entry costs beyond its body (key, tuple, object headers), roughly.
ENTRY_OVERHEAD_BYTES = 400

CacheKey = tuple[Any, ...]

RetiredBy = Callable[[Connection, dict[str, Any], Sequence[PublishedEvent]], bool]
"""Whether any of these events (applied by the route's view after its answer
was read) may change the answer to a request with these inputs (path
parameters and validated query): True when in doubt. It may query the view."""


@dataclass(frozen=True)
class CachedAnswer:
    status: int
    body: bytes
    mimetype: str
    made_at: int | None = None
    """Selective routes: the view's position the answer was read at."""
    valid_at: int | None = None
    """Selective routes: the position up to which no event retired it."""
    inputs: dict[str, Any] | None = None
    """Selective routes: the request's validated inputs, for ``retired_by``."""


class ResponseCache:
    """An LRU bounded in bytes of answers; ``max_bytes`` 0 turns it off."""

    def __init__(self, max_bytes: int, boot_id: str = "") -> None:
        self.max_bytes = max_bytes
        self.boot_id = boot_id
        self._entries: LRUCache[CacheKey, CachedAnswer] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=_size) if max_bytes > 0 else None
        )

    def key(
        self,
        route: str,
        full_path: str,
        viewer: tuple[str, ...],
        positions: Sequence[int | None],
    ) -> CacheKey | None:
        """The key of a read, or None when it must not be cached: the cache is
        off, or a view's position is unknown here (not caught up, or applied by
        another replica)."""
        if self._entries is None or any(p is None for p in positions):
            return None
        return (route, full_path, viewer, tuple(positions))

    def etag(self, key: CacheKey, made_at: int | None = None) -> str:
        # Weak: equal keys give equal answers, but the bytes are not hashed.
        # (A selective route's answer is the same from ``made_at`` on.)
        digest = hashlib.blake2b(repr((self.boot_id, key, made_at)).encode(), digest_size=12)
        return f'W/"{digest.hexdigest()}"'

    def get(self, key: CacheKey) -> CachedAnswer | None:
        assert self._entries is not None
        return self._entries.get(key)

    def put(self, key: CacheKey, answer: CachedAnswer) -> None:
        assert self._entries is not None
        if _size(answer) <= self.max_bytes:
            self._entries[key] = answer

    def drop(self, key: CacheKey) -> None:
        assert self._entries is not None
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)


def _size(answer: CachedAnswer) -> int:
    return len(answer.body) + ENTRY_OVERHEAD_BYTES


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison, as ``If-None-Match`` uses."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


class ResponseCacheProvider(DependencyProvider):
    """One cache per process, shared by all its workers."""

    def setup(self) -> None:
        # ETags differ from one process (and one deployed version) to the next:
        # a new release may shape the same data differently.
        self.cache = ResponseCache(settings().response_cache_mib * 1024 * 1024, uuid.uuid4().hex)

    def get_dependency(self, worker_ctx: Any) -> ResponseCache:
        return self.cache
