"""The response cache's rules, without a gateway: keys, bounds and ETags."""

from __future__ import annotations

from gateway.response_cache import CachedAnswer, ResponseCache, etag_matches


def answer(size: int) -> CachedAnswer:
    return CachedAnswer(200, b"x" * size, "application/json")


def test_no_key_when_off_or_a_view_is_not_followed_here():
    assert ResponseCache(0).key("/r", "/r?a=1", (), [1]) is None
    cache = ResponseCache(1 << 20)
    assert cache.key("/r", "/r?a=1", (), [1, None]) is None
    assert cache.key("/r", "/r?a=1", (), [1, -1]) is not None


def test_an_answer_is_found_only_while_every_position_and_the_viewer_are_the_same():
    cache = ResponseCache(1 << 20)
    key = cache.key("/r", "/r?a=1", ("u1", "buyer"), [5, 7])
    assert key is not None
    cache.put(key, answer(10))
    assert cache.get(cache.key("/r", "/r?a=1", ("u1", "buyer"), [5, 7])) == answer(10)
    for other in (
        cache.key("/r", "/r?a=1", ("u1", "buyer"), [5, 8]),
        cache.key("/r", "/r?a=2", ("u1", "buyer"), [5, 7]),
        cache.key("/r", "/r?a=1", ("u2", "buyer"), [5, 7]),
        cache.key("/r", "/r?a=1", (), [5, 7]),
    ):
        assert other is not None and cache.get(other) is None


def test_memory_is_bounded_in_bytes_least_recently_used_first():
    cache = ResponseCache(10_000)
    keys = [cache.key("/r", f"/r?n={n}", (), [1]) for n in range(10)]
    for key in keys:
        assert key is not None
        cache.put(key, answer(2_000))
    assert len(cache) == 4  # 4 x (2,000 + overhead) fit in 10,000 bytes
    assert cache.get(keys[0]) is None and cache.get(keys[-1]) is not None
    huge = cache.key("/r", "/r?huge", (), [1])
    assert huge is not None
    cache.put(huge, answer(20_000))  # larger than the whole cache: not kept
    assert cache.get(huge) is None and len(cache) == 4


def test_etags_follow_the_key_and_differ_between_processes():
    one, other = ResponseCache(1 << 20, "boot-a"), ResponseCache(1 << 20, "boot-b")
    key = one.key("/r", "/r", (), [3])
    moved = one.key("/r", "/r", (), [4])
    assert key is not None and moved is not None
    assert one.etag(key) == one.etag(key) != one.etag(moved)
    assert one.etag(key) != other.etag(key)
    assert one.etag(key).startswith('W/"')


def test_if_none_match_uses_weak_comparison_and_lists():
    tag = 'W/"abc"'
    assert etag_matches('W/"abc"', tag)
    assert etag_matches('"abc"', tag)
    assert etag_matches('"zzz", W/"abc"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"abcd"', tag)
    assert not etag_matches(None, tag)
    assert not etag_matches("", tag)


def test_every_cached_route_names_views_that_the_gateway_follows():
    from gateway.endpoint import ROUTES
    from gateway.service import GatewayService
    from shared.projection import ProjectionWorker

    cached = [route for route in ROUTES if route.cached_by]
    assert {route.path for route in cached} >= {"/api/v1/users/<user_id>/profile"}
    for route in cached:
        assert route.method == "GET"
        for name in route.cached_by:
            assert isinstance(getattr(GatewayService, name, None), ProjectionWorker), name
