"""Password hashing with argon2id, and a verify that costs the same whether or not a user exists."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

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

MAX_LENGTH = 1024
"""Bounded so a huge password cannot be a denial of service."""
_ESTIMATED_LENGTH = 72
"""zxcvbn judges this many characters at most (its own limit, and its cost grows fast beyond)."""


@dataclass(frozen=True)
class PasswordRules:
    """What a new password must be (``MESH_PASSWORD_*``, see docs/users.md)."""

    min_length: int = 12
    """Fewer characters are refused with ``PASSWORD_TOO_SHORT``."""
    min_score: int = 3
    """zxcvbn's guess score (0 to 4) a password must reach, else ``PASSWORD_TOO_GUESSABLE``."""
    history: int = 5
    """A password equal to one of the last this many (the current one included) is refused
    with ``PASSWORD_REUSED``; 0 allows any."""


@dataclass(frozen=True)
class Refusal:
    """Why a new password is refused: an ErrorInfo reason and what to tell the person."""

    reason: str
    description: str


def judge(password: str, rules: PasswordRules, *, context: Sequence[str]) -> Refusal | None:
    """Why ``password`` cannot be a new password, or None; ``context`` is the user's names.

    A password built from the username or email is as guessable as they are public, so
    zxcvbn is told them.
    """
    if len(password) < rules.min_length:
        return Refusal("PASSWORD_TOO_SHORT", f"must be at least {rules.min_length} characters")
    if len(password) > MAX_LENGTH:
        return Refusal("PASSWORD_TOO_LONG", f"must be at most {MAX_LENGTH} characters")
    estimate = zxcvbn(
        password[:_ESTIMATED_LENGTH],
        user_inputs=[c for c in context if c],
        max_length=_ESTIMATED_LENGTH,
    )
    if estimate["score"] < rules.min_score:
        feedback = estimate["feedback"]
        hints = " ".join(filter(None, [feedback["warning"], *feedback["suggestions"]]))
        return Refusal(
            "PASSWORD_TOO_GUESSABLE",
            f"is too easy to guess (score {estimate['score']} of 4, at least "
            f"{rules.min_score} needed)" + (f": {hints}" if hints else ""),
        )
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

    def matches_any(self, hashes: Iterable[str], password: str) -> bool:
        """Whether ``password`` is the one behind any of ``hashes`` (a password history)."""
        return any(self._matches(stored, password) for stored in hashes)

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
