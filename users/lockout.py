"""Brute-force lockout per (username, client address): progressive temporary locks, then a hard one.

A lock keyed by the username alone lets anyone lock anyone out by guessing wrong; keyed by the
pair, a guesser locks only themself, and the owner logs in from their own address meanwhile.
As in Keycloak's brute-force detection, every ``max_failures`` failures lock the pair for a
while, each lock twice as long as the one before, and the ``max_locks``-th lock is hard: it
lasts until an admin unlocks it (or the password is reset). A correct password clears the
pair's count; failures are forgotten ``reset_seconds`` after the last one.

Every attempt is counted *before* its password is checked (:meth:`Lockout.reserve`), in one
transaction, so however many run at once no more than the budget are ever checked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common import times
from users.store import LoginAttempts


@dataclass(frozen=True)
class Refused:
    """Why an attempt is refused unchecked: the pair is locked until ``until_ns``."""

    until_ns: int | None
    """None for a hard lock, which only an admin (or a password reset) ends."""


@dataclass(frozen=True)
class Lockout:
    """The brute-force rules (``MESH_LOGIN_*``, ``MESH_LOCKOUT_SECONDS``; see docs/users.md)."""

    max_failures: int
    """Failures from one address that lock the pair."""
    seconds: int
    """How long the first lock lasts; each further one lasts twice as long as the last."""
    max_locks: int = 3
    """The lock that is hard; 0 for none."""
    reset_seconds: int = 43200
    """Failures and locks are forgotten this long after the last failure."""

    @property
    def reset_ns(self) -> int:
        return times.seconds(self.reset_seconds)

    def lock_ns(self, lock: int) -> int:
        """How long the ``lock``-th temporary lock lasts."""
        return times.seconds(self.seconds) << (lock - 1)

    def reserve(self, held: LoginAttempts, now_ns: int) -> LoginAttempts | Refused:
        """The pair's attempts with this one counted as a failure, or why it is refused."""
        if held.hard_locked:
            return Refused(None)
        if held.locked_until_ns is not None and held.locked_until_ns > now_ns:
            return Refused(held.locked_until_ns)
        attempts = held
        if held.last_failure_ns + self.reset_ns <= now_ns:
            attempts = dataclasses.replace(held, failures=0, locks=0, locked_until_ns=None)
        if attempts.failures >= self._budget(attempts):
            # The budget is taken by attempts still being checked; their outcome sets the
            # lock, and this one is refused meanwhile.
            return Refused(now_ns + self.lock_ns(attempts.locks + 1))
        return dataclasses.replace(attempts, failures=attempts.failures + 1, last_failure_ns=now_ns)

    def after_failure(self, held: LoginAttempts, now_ns: int) -> LoginAttempts | None:
        """The pair locked by the failure just checked, or None when it locks nothing."""
        if held.hard_locked or held.failures < self._budget(held):
            return None
        lock = held.locks + 1
        if self.max_locks and lock >= self.max_locks:
            return dataclasses.replace(held, locks=lock, locked_until_ns=None, hard_locked=True)
        return dataclasses.replace(held, locks=lock, locked_until_ns=now_ns + self.lock_ns(lock))

    def _budget(self, attempts: LoginAttempts) -> int:
        """Failures the pair may reach before its next lock."""
        return (attempts.locks + 1) * self.max_failures
