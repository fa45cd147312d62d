"""Sessions and tokens: login with lockout, refresh rotation with reuse detection, logout.

Every state change and the event reporting it commit in one transaction; a revocation reaches
the in-memory view as that transaction commits. Password checks run outside transactions so a
slow hash never holds the database's write lock. Everything here blocks: servicers call it
through the server's blocking pool.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common import errors
from common.auth import REFRESH_TOKEN_TYPE, Principal, TokenVerifier
from common.db import Database
from users import store
from users.keys import KeyRing, SigningKey
from users.passwords import MAX_LENGTH, Passwords
from users.revocations import end_sessions, record
from users.tokens import Identity, IssuedToken, TokenIssuer, permissions_of

MAX_USERNAME = 64


@dataclass(frozen=True)
class TokenPair:
    """What Login and RefreshToken hand out."""

    access: IssuedToken
    refresh: IssuedToken
    user: store.UserRecord
    session_id: str


@dataclass(frozen=True)
class Lockout:
    """Brute-force policy: ``max_failures`` failed logins lock a username for ``seconds``."""

    max_failures: int
    seconds: int


def _invalid_credentials() -> errors.Unauthenticated:
    return errors.Unauthenticated("invalid username or password", reason="INVALID_CREDENTIALS")


def _subject(user: store.UserRecord | None, username: str) -> str:
    return f"users/{user.user_id}" if user else f"usernames/{username}"


def _login_failed(
    conn: Connection, *, user: store.UserRecord | None, username: str, reason: str
) -> None:
    store.emit(
        conn,
        "users.auth.login_failed",
        subject=_subject(user, username),
        actor=username,
        username=username,
        reason=reason,
    )


class AuthService:
    """The domain behind AuthService; raises ``common.errors`` only."""

    def __init__(
        self,
        *,
        db: Database,
        passwords: Passwords,
        keys: KeyRing,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        lockout: Lockout,
        session_max_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._keys = keys
        self._issuer = issuer
        self._verifier = verifier
        self._lockout = lockout
        self._session_max = session_max_seconds
        self._clock = clock

    @property
    def session_lifetime(self) -> float:
        """The longest any token of a session can live; revocations are kept that long."""
        return float(max(self._issuer.access_seconds, self._issuer.refresh_seconds))

    def login(self, username: str, password: str) -> TokenPair:
        username = username.strip().lower()
        violations = []
        if not username or len(username) > MAX_USERNAME:
            violations.append(
                errors.FieldViolation("username", f"must be 1 to {MAX_USERNAME} characters")
            )
        if not password or len(password) > MAX_LENGTH:
            violations.append(
                errors.FieldViolation("password", f"must be 1 to {MAX_LENGTH} characters")
            )
        if violations:
            raise errors.invalid(violations)
        self._reserve_attempt(username)
        with self._db.read() as conn:
            user = store.load_user(conn, username=username)
        verdict = self._passwords.verify(user.password_hash if user else None, password)
        if not verdict.ok or user is None:
            self._record_failure(username, user)
            raise _invalid_credentials()
        with self._db.write() as conn:
            now = self._clock()
            self._clear_attempts(conn, username)
            current = store.load_user(conn, user_id=user.user_id, lock=True)
            if current is None or current.disabled:
                _login_failed(conn, user=user, username=username, reason="account_disabled")
                disabled = True
            else:
                disabled = False
                if verdict.new_hash is not None:
                    conn.execute(
                        store.users.update()
                        .where(store.users.c.id == current.user_id)
                        .values(password_hash=verdict.new_hash)
                    )
                pair = self._open_session(conn, current, now)
                store.emit(
                    conn,
                    "users.auth.login_succeeded",
                    subject=_subject(current, username),
                    actor=username,
                    username=username,
                    session_id=pair.session_id,
                )
        if disabled:
            raise errors.Unauthenticated("this account is disabled", reason="ACCOUNT_DISABLED")
        return pair

    def _reserve_attempt(self, username: str) -> None:
        """Count this attempt as a failure before checking the password, atomically.

        Counting first is what keeps concurrent attempts from exceeding the limit: with N
        allowed, at most N attempts can hold a reservation, whatever their timing. A correct
        password then clears the count.
        """
        locked_until: float | None = None
        with self._db.write() as conn:
            now = self._clock()
            row = self._attempts_row(conn, username, now)
            failures = row.failures
            if row.locked_until is not None and row.locked_until > now:
                locked_until = row.locked_until
            else:
                expired_lock = row.locked_until is not None
                forgotten = row.last_failure_at + self._lockout.seconds <= now
                if expired_lock or forgotten:
                    failures = 0
                if failures >= self._lockout.max_failures:
                    # The budget is taken by attempts still being checked; their outcome sets
                    # the lock, and this one is refused meanwhile.
                    locked_until = now + self._lockout.seconds
                else:
                    conn.execute(
                        store.login_attempts.update()
                        .where(store.login_attempts.c.username == username)
                        .values(failures=failures + 1, last_failure_at=now, locked_until=None)
                    )
            if locked_until is not None:
                user = store.load_user(conn, username=username)
                _login_failed(conn, user=user, username=username, reason="account_locked")
        if locked_until is not None:
            retry_after = max(1, int(locked_until - self._clock() + 0.999))
            raise errors.Unauthenticated(
                "too many failed logins; try again later",
                reason="ACCOUNT_LOCKED",
                metadata={"retry_after_seconds": str(retry_after)},
            )

    def _attempts_row(self, conn: Connection, username: str, now: float) -> sa.Row[Any]:
        table = store.login_attempts
        query = sa.select(table).where(table.c.username == username).with_for_update()
        row = conn.execute(query).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        table.insert().values(
                            username=username, failures=0, last_failure_at=now, locked_until=None
                        )
                    )
            except sa.exc.IntegrityError:
                pass  # a concurrent first attempt created it; read theirs
            row = conn.execute(query).one()
        return row

    def _record_failure(self, username: str, user: store.UserRecord | None) -> None:
        with self._db.write() as conn:
            now = self._clock()
            table = store.login_attempts
            # None when housekeeping forgot the reservation while the password was checked
            # (it was older than the lockout period, so it no longer counts anyway).
            row = conn.execute(
                sa.select(table).where(table.c.username == username).with_for_update()
            ).first()
            _login_failed(conn, user=user, username=username, reason="invalid_credentials")
            if (
                row is not None
                and row.failures >= self._lockout.max_failures
                and row.locked_until is None
            ):
                conn.execute(
                    table.update()
                    .where(table.c.username == username)
                    .values(locked_until=now + self._lockout.seconds)
                )
                store.emit(
                    conn,
                    "users.auth.locked_out",
                    subject=_subject(user, username),
                    actor=username,
                    username=username,
                    failures=row.failures,
                    locked_seconds=self._lockout.seconds,
                )

    @staticmethod
    def _clear_attempts(conn: Connection, username: str) -> None:
        conn.execute(
            store.login_attempts.update()
            .where(store.login_attempts.c.username == username)
            .values(failures=0, locked_until=None)
        )

    def _identity(self, conn: Connection, user: store.UserRecord) -> Identity:
        defined = store.all_roles(conn)
        return Identity(
            user_id=user.user_id,
            username=user.username,
            roles=user.roles,
            permissions=permissions_of(defined[r][1] for r in user.roles if r in defined),
        )

    def _open_session(self, conn: Connection, user: store.UserRecord, now: float) -> TokenPair:
        session_id = str(uuid.uuid4())
        pair = self._issue(conn, user, session_id, ends_at=now + self._session_max)
        conn.execute(
            store.sessions.insert().values(
                id=session_id,
                user_id=user.user_id,
                created_at=now,
                refreshed_at=now,
                refresh_token_id=pair.refresh.token_id,
            )
        )
        return pair

    def _issue(
        self, conn: Connection, user: store.UserRecord, session_id: str, *, ends_at: float
    ) -> TokenPair:
        """A new pair for a session; neither token outlives the session's absolute end."""
        refresh = self._issuer.refresh_token(
            user_id=user.user_id, session_id=session_id, not_after=ends_at
        )
        access = self._issuer.access_token(
            self._identity(conn, user), session_id=session_id, not_after=ends_at
        )
        return TokenPair(access=access, refresh=refresh, user=user, session_id=session_id)

    def logout(self, caller: Principal) -> str:
        with self._db.write() as conn:
            now = self._clock()
            ended = end_sessions(
                conn, [caller.session_id], reason="logout", now=now, lifetime=self.session_lifetime
            )
            if not ended and not self._stored_session(conn, caller.session_id):
                # A token without a stored session (e.g. one the service minted for itself);
                # a session already ended (a concurrent logout) needs no second revocation.
                record(
                    conn,
                    session_id=caller.session_id,
                    reason="logout",
                    revoked_at=now,
                    expires_at=now + self.session_lifetime,
                )
            store.emit(
                conn,
                "users.auth.logout",
                subject=f"users/{caller.user_id}",
                actor=caller.username,
                session_id=caller.session_id,
            )
        return caller.session_id

    @staticmethod
    def _stored_session(conn: Connection, session_id: str) -> bool:
        query = sa.select(store.sessions.c.id).where(store.sessions.c.id == session_id)
        return conn.execute(query).first() is not None

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token; a spent one revokes its whole family (RFC 6819 5.2.2.3)."""
        if not refresh_token:
            raise errors.invalid([errors.FieldViolation("refresh_token", "is required")])
        claims = self._verifier.verify_claims(refresh_token, token_type=REFRESH_TOKEN_TYPE)
        session_id, token_id, user_id = str(claims["sid"]), str(claims["jti"]), str(claims["sub"])
        reused = False
        with self._db.write() as conn:
            now = self._clock()
            session = conn.execute(
                sa.select(store.sessions).where(store.sessions.c.id == session_id).with_for_update()
            ).first()
            if session is None or session.user_id != user_id:
                raise errors.Unauthenticated("refresh token is not known", reason="TOKEN_INVALID")
            if session.revoked_at is not None:
                raise errors.Unauthenticated("token has been revoked", reason="TOKEN_REVOKED")
            ends_at = session.created_at + self._session_max
            if now >= ends_at:
                # Its tokens already expire by then; this catches ones issued under a longer
                # MESH_SESSION_MAX_SECONDS.
                raise errors.Unauthenticated(
                    "the session reached its maximum lifetime; log in again",
                    reason="SESSION_EXPIRED",
                )
            user = store.load_user(conn, user_id=user_id, lock=True)
            if session.refresh_token_id != token_id:
                end_sessions(
                    conn,
                    [session_id],
                    reason="refresh_token_reuse",
                    now=now,
                    lifetime=self.session_lifetime,
                )
                store.emit(
                    conn,
                    "users.auth.refresh_reuse_detected",
                    subject=f"users/{user_id}",
                    actor=user.username if user else user_id,
                    session_id=session_id,
                    token_id=token_id,
                )
                reused = True
            else:
                if user is None or user.disabled:
                    raise errors.Unauthenticated(
                        "this account is disabled", reason="ACCOUNT_DISABLED"
                    )
                pair = self._rotate(conn, user, session_id, token_id, now, ends_at=ends_at)
        if reused:
            raise errors.Unauthenticated(
                "refresh token was already used; the session has been revoked",
                reason="REFRESH_TOKEN_REUSED",
            )
        return pair

    def _rotate(
        self,
        conn: Connection,
        user: store.UserRecord,
        session_id: str,
        spent: str,
        now: float,
        *,
        ends_at: float,
    ) -> TokenPair:
        pair = self._issue(conn, user, session_id, ends_at=ends_at)
        conn.execute(
            store.sessions.update()
            .where(store.sessions.c.id == session_id, store.sessions.c.refresh_token_id == spent)
            .values(refresh_token_id=pair.refresh.token_id, refreshed_at=now)
        )
        store.emit(
            conn,
            "users.auth.refreshed",
            subject=f"users/{user.user_id}",
            actor=user.username,
            session_id=session_id,
        )
        return pair

    def rotate_key(self) -> SigningKey:
        return self._keys.rotate()

    def jwks(self) -> list[dict[str, str]]:
        return self._keys.jwks()
