"""The bounded cache: least recently used out first, by count or by weight."""

from __future__ import annotations

from common.lru import LruCache


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LruCache[int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_a_capacity_of_zero_keeps_nothing() -> None:
    cache: LruCache[int] = LruCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None
    assert len(cache) == 0


def test_with_weights_the_capacity_bounds_their_sum() -> None:
    cache: LruCache[list[int]] = LruCache(10, weigh=len)
    cache.put("small", [1, 2])
    cache.put("mid", [0] * 5)
    cache.put("big", [0] * 6)  # 2 + 5 + 6 > 10: the oldest go until it fits
    assert (cache.get("small"), cache.get("mid")) == (None, None)
    assert cache.get("big") == [0] * 6
    cache.put("big", [0])  # a replaced entry counts for its new weight only
    cache.put("mid", [0] * 9)
    assert cache.get("big") == [0] and len(cache) == 2


def test_the_newest_entry_stays_even_when_it_alone_outweighs_the_capacity() -> None:
    cache: LruCache[list[int]] = LruCache(3, weigh=len)
    cache.put("a", [1])
    cache.put("huge", [0] * 100)
    assert cache.get("a") is None
    assert cache.get("huge") == [0] * 100
    cache.put("b", [1])
    assert cache.get("huge") is None and cache.get("b") == [1]
