"""Password hashing with argon2id, and a verify that costs the same whether or not a user exists."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_PROFILES = {
    # OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    "owasp": (2, 19 * 1024, 1),
    # RFC 9106 second recommended option: 3 iterations, 64 MiB, 4 lanes.
    "rfc9106": (
        profiles.RFC_9106_LOW_MEMORY.time_cost,
        profiles.RFC_9106_LOW_MEMORY.memory_cost,
        profiles.RFC_9106_LOW_MEMORY.parallelism,
    ),
    # Only for tests: keeps suites fast; never a production setting.
    "test": (1, 64, 1),
}
"""Cost profiles: (time cost, memory in KiB, lanes)."""

MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Long enough to resist guessing; bounded so a huge password cannot be a denial of service."""


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable as a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None


@dataclass(frozen=True)
class Verdict:
    """Outcome of a password check; ``new_hash`` is set when the stored hash should be replaced."""

    ok: bool
    new_hash: str | None = None


class Passwords:
    """argon2id hashing with one cost profile, rehashing old hashes on successful login."""

    def __init__(self, profile: str = "owasp") -> None:
        time_cost, memory_cost, parallelism = _PROFILES[profile]
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # Unknown users are checked against this so they take as long as known ones.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verdict:
        """Check ``password``; with no stored hash, spend the same time and fail."""
        if len(password) > MAX_LENGTH:
            return Verdict(ok=False)
        try:
            self._hasher.verify(stored_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verdict(ok=False)
        if stored_hash is None:
            return Verdict(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verdict(ok=True, new_hash=self._hasher.hash(password))
        return Verdict(ok=True)
