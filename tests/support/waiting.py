"""Waiting in tests for what happens in another thread or process, with a bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    ignoring: tuple[type[BaseException], ...] = (),
    what: str = "",
) -> T:
    """Return the first truthy answer of ``condition``, asked until ``timeout``.

    An exception of a type in ``ignoring`` counts as a falsy answer: a service that is
    restarting refuses calls before it answers them.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = condition()
        except ignoring:
            answer = None  # type: ignore[assignment]
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:g} s: {what or condition}")
        time.sleep(interval)
