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
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from nameko.extensions import DependencyProvider
from prometheus_client import Counter

from shared.config import settings

LOOKUPS = Counter(
    "gateway_response_cache_total",
    "Cacheable reads by outcome: hit, not_modified (304), miss, bypass (view applied elsewhere)",
    ["route", "outcome"],
)

#: What an entry costs beyond its body (key, tuple, object headers), roughly.
ENTRY_OVERHEAD_BYTES = 400

CacheKey = tuple[Any, ...]


@dataclass(frozen=True)
class CachedAnswer:
    status: int
    body: bytes
    mimetype: str


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

    def etag(self, key: CacheKey) -> str:
        # Weak: equal keys give equal answers, but the bytes are not hashed.
        digest = hashlib.blake2b(repr((self.boot_id, key)).encode(), digest_size=12)
        return f'W/"{digest.hexdigest()}"'

    def get(self, key: CacheKey) -> CachedAnswer | None:
        assert self._entries is not None
        return self._entries.get(key)

    def put(self, key: CacheKey, answer: CachedAnswer) -> None:
        assert self._entries is not None
        if _size(answer) <= self.max_bytes:
            self._entries[key] = answer

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
