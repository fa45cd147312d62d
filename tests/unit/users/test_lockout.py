"""The lockout rules on their own: budgets, growing locks, the hard one, forgetting."""

from __future__ import annotations

import pytest

from common import times
from users.lockout import Lockout, Refused
from users.store import LoginAttempts

RULES = Lockout(max_failures=2, seconds=10, max_locks=3, reset_seconds=3600)


def _fresh(now: int = 0) -> LoginAttempts:
    return LoginAttempts("ann", "198.51.100.7", 0, now, None)


def _fail(rules: Lockout, held: LoginAttempts, now: int) -> LoginAttempts:
    """One attempt, reserved then failed: the pair afterwards."""
    reserved = rules.reserve(held, now)
    assert isinstance(reserved, LoginAttempts), reserved
    return rules.after_failure(reserved, now) or reserved


def test_in_flight_attempts_hold_the_budget():
    first = RULES.reserve(_fresh(), 1)
    assert isinstance(first, LoginAttempts)
    second = RULES.reserve(first, 1)
    assert isinstance(second, LoginAttempts) and second.failures == 2
    # Both still being checked: a third is refused, though no lock is set yet.
    assert isinstance(RULES.reserve(second, 1), Refused)
    # Whichever fails first sees the pair at its budget and sets the lock; the next, no other.
    locked = RULES.after_failure(second, 1)
    assert locked is not None and locked.locks == 1
    assert RULES.after_failure(locked, 1) is None


def test_each_lock_lasts_twice_as_long_and_the_third_is_hard():
    held, now, lengths = _fresh(), 0, []
    for _ in range(3):
        for _ in range(2):
            held = _fail(RULES, held, now)
        lengths.append(None if held.hard_locked else held.locked_until_ns - now)
        refusal = RULES.reserve(held, now)
        assert isinstance(refusal, Refused) and refusal.until_ns == held.locked_until_ns
        now = (held.locked_until_ns or now) + 1
    assert lengths == [times.seconds(10), times.seconds(20), None]
    # A hard lock outlives any wait, even the failure reset time.
    assert RULES.reserve(held, now + times.seconds(10**6)) == Refused(None)


def test_no_hard_lock_when_max_locks_is_zero():
    rules = Lockout(max_failures=1, seconds=1, max_locks=0, reset_seconds=3600)
    held, now = _fresh(), 0
    for _ in range(10):
        held = _fail(rules, held, now)
        assert not held.hard_locked
        now = held.locked_until_ns + 1


@pytest.mark.parametrize("idle", [3600, 7200])
def test_failures_and_locks_are_forgotten_after_the_reset_time(idle):
    held = _fail(RULES, _fail(RULES, _fresh(), 0), 0)
    assert held.locks == 1
    later = times.seconds(idle)
    again = RULES.reserve(held, later)
    assert isinstance(again, LoginAttempts)
    assert (again.failures, again.locks, again.locked_until_ns) == (1, 0, None)
