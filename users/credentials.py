"""New passwords: judged by the rules, hashed, and put in place so no old session survives them.

Every way a password changes (the user's own change, a reset token, an admin's reset) comes
through here, so each ends every session of the user and keeps the password history alike.
Hashing runs outside transactions, like every password check.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from common import errors
from users.passwords import PasswordRules, Passwords, Refusal, judge
from users.revocations import end_sessions
from users.store import UserRecord, UserStore, UserWrites


def refused(field: str, refusal: Refusal) -> errors.InvalidArgument:
    """The error for a password the rules refuse, with its reason on ErrorInfo and the field."""
    violation = errors.FieldViolation(field, refusal.description, refusal.reason)
    return errors.InvalidArgument(
        f"{field}: {refusal.description}", reason=refusal.reason, violations=[violation]
    )


def new_reset_token() -> tuple[str, str]:
    """A reset token and the SHA-256 it is stored as (its 256 random bits need no slow hash)."""
    token = secrets.token_urlsafe(32)
    return token, reset_token_hash(token)


def reset_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """The password rules of one User Service and the hasher they hash with."""

    store: UserStore
    passwords: Passwords
    rules: PasswordRules
    session_lifetime_ns: int
    """How long a revocation must be kept (see :func:`users.revocations.end_sessions`)."""

    def judge(self, password: str, *, context: Sequence[str]) -> Refusal | None:
        return judge(password, self.rules, context=context)

    def new_hash(self, user: UserRecord, password: str, *, field: str) -> str:
        """The hash of ``password`` as the user's next one, or InvalidArgument on ``field``.

        It must pass the rules and be none of the user's last ``rules.history`` passwords.
        """
        refusal = self.judge(password, context=(user.username, user.email, user.display_name))
        if refusal is not None:
            raise refused(field, refusal)
        if self.rules.history:
            with self.store.read() as reads:
                earlier = reads.previous_password_hashes(user.user_id, limit=self.rules.history - 1)
            if self.passwords.matches_any([user.password_hash, *earlier], password):
                raise refused(
                    field,
                    Refusal(
                        "PASSWORD_REUSED",
                        f"must differ from your last {self.rules.history} passwords",
                    ),
                )
        return self.passwords.hash(password)

    def put(
        self,
        tx: UserWrites,
        user: UserRecord,
        password_hash: str,
        *,
        change_required: bool,
        reason: str,
        now_ns: int,
    ) -> list[str]:
        """Make ``password_hash`` the user's password in ``tx``; the sessions it ended.

        Every session ends (through the revocation log, so across the mesh), every unused
        reset token is spent, and every lock of the username ends: the password guessed at is
        gone.
        """
        tx.set_password(
            user.user_id,
            password_hash,
            change_required=change_required,
            keep=max(self.rules.history - 1, 0),
            now_ns=now_ns,
        )
        tx.spend_reset_tokens(user.user_id, used_ns=now_ns)
        tx.clear_login_attempts(user.username, None)
        return end_sessions(
            tx,
            tx.live_session_ids(user.user_id),
            reason=reason,
            now_ns=now_ns,
            lifetime_ns=self.session_lifetime_ns,
        )
