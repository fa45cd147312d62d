"""A bounded, thread-safe cache, least recently used first out: what services keep in memory.

Its users cache what never changes under its key (blobs and messages named by their content
hash, commits, a verified token string), so an entry is never stale; it only has to stay
bounded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    """At most ``capacity`` entries (none when it is 0), or that much weight given ``weigh``.

    With ``weigh`` an entry counts for its weight; the newest entry stays even when it alone
    outweighs the capacity, so a value too large to share the cache is still not rebuilt on
    every read.
    """

    def __init__(self, capacity: int, *, weigh: Callable[[V], int] | None = None) -> None:
        self._capacity = capacity
        self._weigh = weigh
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: str, value: V) -> None:
        if self._capacity <= 0:
            return
        weight = 1 if self._weigh is None else max(1, self._weigh(value))
        with self._lock:
            replaced = self._items.pop(key, None)
            if replaced is not None:
                self._weight -= replaced[1]
            self._items[key] = (value, weight)
            self._weight += weight
            while self._weight > self._capacity and len(self._items) > 1:
                self._weight -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)
