"""Sessions and tokens: login with lockout, refresh rotation with reuse detection, logout.

Every state change and the event reporting it commit in one store transaction; a revocation
reaches the in-memory view as that transaction commits. Password checks run outside
transactions so a slow hash never holds the database's write lock. Everything here blocks:
servicers call it through the server's blocking pool.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common import errors, origin, pages, times
from common.auth import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, Principal, TokenVerifier
from common.errors import quoted
from common.outbox import OutboxEvent
from common.permissions import Permission
from users import totp
from users.credentials import Credentials, reset_token_hash
from users.keys import KeyRing, SigningKey
from users.keystore import Sealer, SealError
from users.lockout import Lockout, Refused
from users.passwords import MAX_LENGTH, Verdict
from users.revocations import end_sessions
from users.store import SessionRecord, TotpRecord, UserRecord, UserStore, UserWrites
from users.tokens import (
    MFA_TICKET_TYPE,
    PASSWORD_CHANGE_TOKEN_TYPE,
    IssuedToken,
    TokenIssuer,
    identity_of,
)

MAX_USERNAME = 64
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_RECOVERY_CODE = 64


class RequiredAction(enum.Enum):
    """What a user must do before Login's answer is a session of any use."""

    NONE = "none"
    CHANGE_PASSWORD = "change_password"  # noqa: S105 - an action's name, not a secret
    VERIFY_SECOND_FACTOR = "verify_second_factor"
    CONFIGURE_TOTP = "configure_totp"


@dataclass(frozen=True)
class TokenPair:
    """What Login, RefreshToken, ChangePassword and the second-factor steps hand out."""

    access: IssuedToken
    """An access token; else the change-only token, or the MFA ticket (see ``required``)."""
    refresh: IssuedToken | None
    """None unless ``required`` is NONE."""
    user: UserRecord
    session_id: str
    """Empty for an MFA ticket, which opens no session."""
    required: RequiredAction = RequiredAction.NONE


def _invalid_credentials() -> errors.Unauthenticated:
    return errors.Unauthenticated("invalid username or password", reason="INVALID_CREDENTIALS")


def _account_disabled() -> errors.Unauthenticated:
    return errors.Unauthenticated("this account is disabled", reason="ACCOUNT_DISABLED")


def _reset_token_invalid() -> errors.Unauthenticated:
    return errors.Unauthenticated(
        "the reset token is unknown, used or expired; ask an admin for a new one",
        reason="RESET_TOKEN_INVALID",
    )


def _ticket_invalid(token_reason: str) -> errors.Unauthenticated:
    return errors.Unauthenticated(
        "the MFA ticket is invalid, expired or used; log in again",
        reason="MFA_TICKET_INVALID",
        metadata={"token_reason": token_reason},
    )


def _not_enrolled() -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        "this account has no confirmed TOTP; enrol with EnrollTotp and ConfirmTotp",
        reason="MFA_NOT_ENROLLED",
    )


def _already_enrolled() -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        "this account has TOTP already; an admin can reset it (ResetUserMfa)",
        reason="MFA_ALREADY_ENROLLED",
    )


_SECOND_FACTOR_FAILURES = {
    "invalid_second_factor": ("the code is wrong", "MFA_CODE_INVALID"),
    "second_factor_reused": (
        "this code was used already; wait for the next one",
        "MFA_CODE_REUSED",
    ),
}
"""Why a second factor was refused (the event's reason): the message and ErrorInfo reason."""


def _password_violations(**fields: str) -> list[errors.FieldViolation]:
    return [
        errors.FieldViolation(name, f"must be 1 to {MAX_LENGTH} characters")
        for name, value in fields.items()
        if not value or len(value) > MAX_LENGTH
    ]


def _subject(user: UserRecord | None, username: str) -> str:
    return f"users/{user.user_id}" if user else f"usernames/{username}"


def _login_failed(tx: UserWrites, *, user: UserRecord | None, username: str, reason: str) -> None:
    tx.emit(
        OutboxEvent(
            "users.auth.login_failed",
            subject=_subject(user, username),
            actor=username,
            data={"username": username, "reason": reason},
        )
    )


def _expiry_ns(claims: dict[str, object]) -> int:
    exp = claims["exp"]
    assert isinstance(exp, int), "the verifier checked exp"
    return exp * times.SECOND


def _spend_second_factor(
    tx: UserWrites,
    credential: TotpRecord,
    secret: str,
    *,
    totp_code: str,
    recovery_code: str,
    now_ns: int,
) -> str | None:
    """Take the code, under the user's lock; None when it was good, else the failure's reason.

    Recovery codes are found by their digest and spent; a TOTP code's step must come after the
    last one accepted, so a code seen over someone's shoulder is no good once used.
    """
    user_id = credential.user_id
    if recovery_code:
        spent = tx.spend_recovery_code(
            user_id, totp.recovery_code_hash(recovery_code), used_ns=now_ns
        )
        return None if spent else "invalid_second_factor"
    step = totp.matching_step(secret, totp_code, now_ns=now_ns)
    if step is None:
        return "invalid_second_factor"
    if credential.last_step is not None and step <= credential.last_step:
        return "second_factor_reused"
    tx.set_totp_step(user_id, step)
    return None


class AuthService:
    """The domain behind AuthService; raises ``common.errors`` only."""

    def __init__(
        self,
        *,
        store: UserStore,
        credentials: Credentials,
        keys: KeyRing,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        lockout: Lockout,
        session_max_seconds: int,
        mfa_ticket_seconds: int,
        totp_issuer: str,
        sealer: Sealer,
        clock: Callable[[], int] = times.now,
    ) -> None:
        """``totp_issuer`` names the mesh in authenticator apps (the tokens' issuer).

        ``sealer`` seals TOTP secrets at rest under the key-encryption key, as it does the
        signing keys: a database dump alone yields no authenticator's secret.
        """
        self._store = store
        self._credentials = credentials
        self._passwords = credentials.passwords
        self._keys = keys
        self._issuer = issuer
        self._verifier = verifier
        self._lockout = lockout
        self._session_max_ns = times.seconds(session_max_seconds)
        self._mfa_ticket_seconds = mfa_ticket_seconds
        self._totp_issuer = totp_issuer
        self._sealer = sealer
        self._clock = clock

    def _sealed(self, user_id: str, secret: str) -> str:
        return self._sealer.seal_bytes(f"totp:{user_id}", secret.encode())

    def _secret(self, credential: TotpRecord) -> str:
        """The TOTP secret of ``credential``; one stored before secrets were sealed as it is."""
        if not credential.secret.startswith("{"):  # base32 never starts so; an envelope does
            return credential.secret
        try:
            return self._sealer.open_bytes(f"totp:{credential.user_id}", credential.secret).decode()
        except SealError as exc:
            raise errors.Internal(
                "this account's TOTP secret does not open here; an admin can reset it",
                reason="MFA_SECRET_UNREADABLE",
            ) from exc

    @property
    def session_lifetime_ns(self) -> int:
        """The longest any token of a session can live; revocations are kept that long."""
        return self._credentials.session_lifetime_ns

    def login(self, username: str, password: str, *, user_agent: str = "") -> TokenPair:
        username, user, verdict = self._checked_password(username, password)
        with self._store.write() as tx:
            now = self._clock()
            current = self._admitted(tx, username, user, verdict)
            if current is not None:
                step = self._second_step(tx, current)
                if step is RequiredAction.NONE:
                    pair = self._establish(tx, current, now, user_agent, second_factor=None)
                else:
                    pair = self._ticket(tx, current, step)
        if current is None:
            raise _account_disabled()
        return pair

    @staticmethod
    def _second_step(tx: UserWrites, user: UserRecord) -> RequiredAction:
        """What a correct password leads to: a code, the enrolment a role requires, or nothing."""
        if user.mfa_enrolled:
            return RequiredAction.VERIFY_SECOND_FACTOR
        defined = tx.roles()
        if any(defined[r].mfa_required for r in user.roles if r in defined):
            return RequiredAction.CONFIGURE_TOTP
        return RequiredAction.NONE

    def _ticket(self, tx: UserWrites, user: UserRecord, step: RequiredAction) -> TokenPair:
        ticket = self._issuer.mfa_ticket(
            user_id=user.user_id, username=user.username, lifetime=self._mfa_ticket_seconds
        )
        tx.emit(
            OutboxEvent(
                "users.auth.second_factor_required",
                subject=f"users/{user.user_id}",
                actor=user.username,
                data={"username": user.username, "required_action": step.value},
            )
        )
        return TokenPair(access=ticket, refresh=None, user=user, session_id="", required=step)

    def _establish(
        self,
        tx: UserWrites,
        user: UserRecord,
        now: int,
        user_agent: str,
        *,
        second_factor: str | None,
    ) -> TokenPair:
        """The session of a login whose every factor is checked, and its event.

        A user who must change their password gets the change-only session, after the second
        factor, as Keycloak orders its required actions.
        """
        if user.password_change_required:
            pair = self._open_change_session(tx, user, now, user_agent)
        else:
            pair = self._open_session(tx, user, now, user_agent)
        tx.emit(
            OutboxEvent(
                "users.auth.login_succeeded",
                subject=f"users/{user.user_id}",
                actor=user.username,
                data={
                    "username": user.username,
                    "session_id": pair.session_id,
                    "password_change_required": user.password_change_required,
                    "second_factor": second_factor,
                },
            )
        )
        return pair

    def verify_second_factor(
        self, ticket: str, *, totp_code: str, recovery_code: str, user_agent: str = ""
    ) -> TokenPair:
        """Login's second step: the ticket and one code, under the login lockout; a session.

        A code is checked before anything is spent, so a wrong one leaves the ticket good for
        another try until the lockout stops them; a right one spends the ticket, the code's
        time step (no code of it or an earlier step is taken again) or the recovery code.
        """
        claims = self._ticket_claims(ticket)
        violations = []
        if bool(totp_code) == bool(recovery_code):
            violations.append(
                errors.FieldViolation("totp_code", "give either totp_code or recovery_code")
            )
        if len(recovery_code) > MAX_RECOVERY_CODE:
            violations.append(
                errors.FieldViolation(
                    "recovery_code", f"must be at most {MAX_RECOVERY_CODE} characters"
                )
            )
        if violations:
            raise errors.invalid(violations)
        user = self._ticket_holder(claims)
        self._reserve_attempt(user.username)
        with self._store.write() as tx:
            now = self._clock()
            current = tx.user(user_id=user.user_id, lock=True)
            credential = tx.totp(user.user_id)
            # Both since the ticket was issued: disabled, or reset by an admin.
            if current is None or current.disabled:
                raise _account_disabled()
            if credential is None or credential.confirmed_ns is None:
                raise _not_enrolled()
            failure = _spend_second_factor(
                tx,
                credential,
                self._secret(credential),
                totp_code=totp_code,
                recovery_code=recovery_code,
                now_ns=now,
            )
            if failure is None:
                if not tx.spend_ticket(str(claims["jti"]), expires_ns=_expiry_ns(claims)):
                    raise _ticket_invalid("TOKEN_REUSED")
                tx.clear_login_attempts(user.username, origin.client_address())
                return self._establish(
                    tx,
                    current,
                    now,
                    user_agent,
                    second_factor="recovery_code" if recovery_code else "totp",
                )
        self._record_failure(user.username, user, reason=failure)
        message, reason = _SECOND_FACTOR_FAILURES[failure]
        raise errors.Unauthenticated(message, reason=reason)

    def enroll_totp(self, token: str) -> totp.Enrolment:
        """A new pending secret for the bearer (replacing a pending one); shown only now."""
        claims, _ = self._enrolment_claims(token)
        with self._store.read() as reads:
            user = reads.user(user_id=str(claims["sub"]))
        if user is None or user.disabled:
            raise _account_disabled()
        enrolment = totp.enrolment(issuer=self._totp_issuer, username=user.username)
        with self._store.write() as tx:
            current = tx.user(user_id=user.user_id, lock=True)
            if current is None or current.disabled:
                raise _account_disabled()
            if current.mfa_enrolled:
                raise _already_enrolled()
            tx.put_totp(
                TotpRecord(
                    user_id=user.user_id,
                    secret=self._sealed(user.user_id, enrolment.secret),
                    created_ns=self._clock(),
                )
            )
            tx.emit(
                OutboxEvent(
                    "users.user.mfa_enrollment_started",
                    subject=f"users/{user.user_id}",
                    actor=user.username,
                    data={"username": user.username},
                )
            )
        return enrolment

    def confirm_totp(
        self, token: str, totp_code: str, *, user_agent: str = ""
    ) -> tuple[list[str], TokenPair | None]:
        """Activate the pending secret with a code of it; the recovery codes, and a session.

        The session comes only when the bearer is Login's ticket, which this spends. A
        wrong code here is bad input, not a failed login: it is checked against the secret
        the caller was just given, so it guesses at nothing.
        """
        claims, from_login = self._enrolment_claims(token)
        if not totp_code:
            raise errors.invalid([errors.FieldViolation("totp_code", "is required")])
        codes = totp.new_recovery_codes()
        with self._store.write() as tx:
            now = self._clock()
            user = tx.user(user_id=str(claims["sub"]), lock=True)
            if user is None or user.disabled:
                raise _account_disabled()
            pending = tx.totp(user.user_id)
            if pending is None:
                raise errors.FailedPrecondition(
                    "no enrolment is pending; start with EnrollTotp", reason="MFA_NOT_ENROLLED"
                )
            if pending.confirmed_ns is not None:
                raise _already_enrolled()
            step = totp.matching_step(self._secret(pending), totp_code, now_ns=now)
            if step is None:
                raise errors.InvalidArgument(
                    "the code is wrong; check the authenticator's clock",
                    reason="MFA_CODE_INVALID",
                    violations=[errors.FieldViolation("totp_code", "is not the current code")],
                )
            tx.confirm_totp(user.user_id, confirmed_ns=now, step=step)
            tx.replace_recovery_codes(user.user_id, [totp.recovery_code_hash(c) for c in codes])
            tx.emit(
                OutboxEvent(
                    "users.user.mfa_enrolled",
                    subject=f"users/{user.user_id}",
                    actor=user.username,
                    data={"username": user.username, "recovery_codes": len(codes)},
                )
            )
            pair = None
            if from_login:
                if not tx.spend_ticket(str(claims["jti"]), expires_ns=_expiry_ns(claims)):
                    raise _ticket_invalid("TOKEN_REUSED")
                enrolled = tx.user(user_id=user.user_id)
                assert enrolled is not None, "a locked user vanished inside its transaction"
                pair = self._establish(tx, enrolled, now, user_agent, second_factor="totp")
        return codes, pair

    def _ticket_claims(self, ticket: str) -> dict[str, object]:
        try:
            return self._verifier.verify_claims(ticket, token_type=MFA_TICKET_TYPE)
        except errors.Unauthenticated as exc:
            raise _ticket_invalid(exc.reason) from exc

    def _ticket_holder(self, claims: dict[str, object]) -> UserRecord:
        """The enabled, enrolled user a ticket speaks for."""
        with self._store.read() as reads:
            user = reads.user(user_id=str(claims["sub"]))
        if user is None or user.disabled:
            raise _account_disabled()
        if not user.mfa_enrolled:
            raise _not_enrolled()
        return user

    def _enrolment_claims(self, token: str) -> tuple[dict[str, object], bool]:
        """The claims of Login's MFA ticket (and True), or else of an access token."""
        try:
            return self._verifier.verify_claims(token, token_type=MFA_TICKET_TYPE), True
        except errors.Unauthenticated as exc:
            if exc.reason != "TOKEN_TYPE_MISMATCH":
                raise _ticket_invalid(exc.reason) from exc
        return self._verifier.verify_claims(token, token_type=ACCESS_TOKEN_TYPE), False

    def authenticate_client(self, username: str, password: str) -> tuple[str, ...]:
        """The permissions of an account proving itself with its password, opening no session.

        For a client calling an endpoint that takes its credentials on every call (token
        introspection): the password is checked under the login lockout, and a failure is
        recorded as a failed login, but a success leaves no session and no event behind.
        """
        username, user, verdict = self._checked_password(username, password)
        with self._store.write() as tx:
            current = self._admitted(tx, username, user, verdict)
            step = RequiredAction.NONE if current is None else self._second_step(tx, current)
            permissions = () if current is None else identity_of(current, tx.roles()).permissions
        if current is None:
            raise _account_disabled()
        if step is not RequiredAction.NONE:
            raise errors.Unauthenticated(
                "a password alone does not authenticate this account: it needs a second factor",
                reason="MFA_REQUIRED",
            )
        if current.password_change_required:
            raise errors.Unauthenticated(
                "the password must be changed first", reason="PASSWORD_CHANGE_REQUIRED"
            )
        return permissions

    def _checked_password(self, username: str, password: str) -> tuple[str, UserRecord, Verdict]:
        """The normalised username, its user and the verdict on a correct password.

        The attempt is reserved under the lockout first; a wrong password or an unknown user is
        recorded and refused with ``INVALID_CREDENTIALS``.
        """
        username = username.strip().lower()
        violations = []
        if not username or len(username) > MAX_USERNAME:
            violations.append(
                errors.FieldViolation("username", f"must be 1 to {MAX_USERNAME} characters")
            )
        violations.extend(_password_violations(password=password))
        if violations:
            raise errors.invalid(violations)
        self._reserve_attempt(username)
        with self._store.read() as reads:
            user = reads.user(username=username)
        verdict = self._passwords.verify(user.password_hash if user else None, password)
        if not verdict.ok or user is None:
            self._record_failure(username, user)
            raise _invalid_credentials()
        return username, user, verdict

    def _admitted(
        self, tx: UserWrites, username: str, user: UserRecord, verdict: Verdict
    ) -> UserRecord | None:
        """After a correct password, in ``tx``: the user as now, or None when disabled.

        The pair's failures are cleared, a disabled account's attempt recorded, and an outdated
        hash replaced.
        """
        tx.clear_login_attempts(username, origin.client_address())
        current = tx.user(user_id=user.user_id, lock=True)
        if current is None or current.disabled:
            _login_failed(tx, user=user, username=username, reason="account_disabled")
            return None
        if verdict.new_hash is not None:
            tx.set_password_hash(current.user_id, verdict.new_hash)
        return current

    def _reserve_attempt(self, username: str) -> None:
        """Count this attempt from the caller's address as a failure first, atomically.

        Counting first is what keeps concurrent attempts from exceeding the limit: with N
        allowed, at most N attempts can hold a reservation, whatever their timing. A correct
        password then clears the count (:mod:`users.lockout`).
        """
        with self._store.write() as tx:
            now = self._clock()
            held = tx.login_attempts(username, origin.client_address(), now_ns=now)
            outcome = self._lockout.reserve(held, now)
            if isinstance(outcome, Refused):
                user = tx.user(username=username)
                _login_failed(tx, user=user, username=username, reason="account_locked")
            else:
                tx.set_login_attempts(outcome)
        if isinstance(outcome, Refused):
            if outcome.until_ns is None:
                raise errors.Unauthenticated(
                    "too many failed logins from this address; an admin must unlock it",
                    reason="ACCOUNT_LOCKED",
                    metadata={"hard_lock": "true"},
                )
            retry_after = max(1, -(-(outcome.until_ns - self._clock()) // times.SECOND))
            raise errors.Unauthenticated(
                "too many failed logins from this address; try again later",
                reason="ACCOUNT_LOCKED",
                metadata={"retry_after_seconds": str(retry_after)},
            )

    def _record_failure(
        self, username: str, user: UserRecord | None, *, reason: str = "invalid_credentials"
    ) -> None:
        with self._store.write() as tx:
            now = self._clock()
            _login_failed(tx, user=user, username=username, reason=reason)
            # None when housekeeping forgot the reservation while the password was checked
            # (its failures were past the reset time, so they no longer count anyway).
            held = tx.held_login_attempts(username, origin.client_address())
            locked = None if held is None else self._lockout.after_failure(held, now)
            if locked is None:
                return
            tx.set_login_attempts(locked)
            tx.emit(
                OutboxEvent(
                    "users.auth.locked_out",
                    subject=_subject(user, username),
                    actor=username,
                    data={
                        "username": username,
                        "failures": locked.failures,
                        "lock": locked.locks,
                        "hard": locked.hard_locked,
                        "locked_seconds": None
                        if locked.locked_until_ns is None
                        else (locked.locked_until_ns - now) // times.SECOND,
                    },
                )
            )

    def _open_session(
        self, tx: UserWrites, user: UserRecord, now: int, user_agent: str
    ) -> TokenPair:
        session_id = str(uuid.uuid4())
        pair, refresh_id = self._issue(tx, user, session_id, ends_ns=now + self._session_max_ns)
        tx.open_session(
            SessionRecord(
                session_id=session_id,
                user_id=user.user_id,
                created_ns=now,
                refreshed_ns=now,
                refresh_token_id=refresh_id,
                client_address=origin.client_address(),
                user_agent=user_agent,
            )
        )
        return pair

    def _open_change_session(
        self, tx: UserWrites, user: UserRecord, now: int, user_agent: str
    ) -> TokenPair:
        """A session whose one token can only change the password (no refresh token)."""
        session_id = str(uuid.uuid4())
        token = self._issuer.password_change_token(
            user_id=user.user_id,
            username=user.username,
            session_id=session_id,
            not_after_ns=now + self._session_max_ns,
        )
        tx.open_session(
            SessionRecord(
                session_id=session_id,
                user_id=user.user_id,
                created_ns=now,
                refreshed_ns=now,
                refresh_token_id="",
                client_address=origin.client_address(),
                user_agent=user_agent,
            )
        )
        return TokenPair(
            access=token,
            refresh=None,
            user=user,
            session_id=session_id,
            required=RequiredAction.CHANGE_PASSWORD,
        )

    def change_password(
        self, token: str, current_password: str, new_password: str, *, user_agent: str = ""
    ) -> TokenPair:
        """The caller's own change: every session ends, and a new one is handed back.

        ``token`` is an access token or the change-only token of Login. The current password
        is checked under the same lockout as a login, so a stolen token cannot guess it.
        """
        claims = self._bearer_claims(token)
        violations = _password_violations(
            current_password=current_password, new_password=new_password
        )
        if violations:
            raise errors.invalid(violations)
        with self._store.read() as reads:
            user = reads.user(user_id=str(claims["sub"]))
        if user is None or user.disabled:
            raise _account_disabled()
        self._reserve_attempt(user.username)
        if not self._passwords.verify(user.password_hash, current_password).ok:
            self._record_failure(user.username, user)
            raise errors.Unauthenticated(
                "the current password is wrong", reason="INVALID_CREDENTIALS"
            )
        with self._store.write() as tx:
            tx.clear_login_attempts(user.username, origin.client_address())
        password_hash = self._credentials.new_hash(user, new_password, field="new_password")
        with self._store.write() as tx:
            now = self._clock()
            current = tx.user(user_id=user.user_id, lock=True)
            if current is None or current.disabled:
                raise _account_disabled()
            if current.password_hash != user.password_hash:
                raise errors.Aborted(
                    "the password changed meanwhile; sign in again", reason="PASSWORD_CHANGED"
                )
            ended = self._credentials.put(
                tx,
                current,
                password_hash,
                change_required=False,
                reason="password_changed",
                now_ns=now,
            )
            changed = tx.user(user_id=user.user_id)
            assert changed is not None, "a locked user vanished inside its transaction"
            pair = self._open_session(tx, changed, now, user_agent)
            tx.emit(
                OutboxEvent(
                    "users.user.password_changed",
                    subject=f"users/{user.user_id}",
                    actor=user.username,
                    data={
                        "username": user.username,
                        "method": "current_password",
                        "ended_sessions": len(ended),
                        "session_id": pair.session_id,
                    },
                )
            )
        return pair

    def reset_password(self, reset_token: str, new_password: str) -> None:
        """Redeem a reset token an admin issued: once, before it expires; every session ends."""
        violations = _password_violations(new_password=new_password)
        if not reset_token:
            violations.insert(0, errors.FieldViolation("reset_token", "is required"))
        if violations:
            raise errors.invalid(violations)
        token_hash = reset_token_hash(reset_token)
        with self._store.read() as reads:
            found = reads.reset_token(token_hash)
            user = reads.user(user_id=found.user_id) if found else None
        if found is None or user is None or found.used_ns is not None:
            raise _reset_token_invalid()
        if self._clock() >= found.expires_ns:
            raise _reset_token_invalid()
        if user.disabled:
            raise _account_disabled()
        password_hash = self._credentials.new_hash(user, new_password, field="new_password")
        with self._store.write() as tx:
            now = self._clock()
            spent = tx.reset_token(token_hash, lock=True)
            current = tx.user(user_id=user.user_id, lock=True)
            if spent is None or spent.used_ns is not None or now >= spent.expires_ns:
                raise _reset_token_invalid()  # redeemed or superseded meanwhile
            if current is None or current.disabled:
                raise _account_disabled()
            ended = self._credentials.put(
                tx,
                current,
                password_hash,
                change_required=False,
                reason="password_changed",
                now_ns=now,
            )
            tx.emit(
                OutboxEvent(
                    "users.user.password_changed",
                    subject=f"users/{current.user_id}",
                    actor=current.username,
                    data={
                        "username": current.username,
                        "method": "reset_token",
                        "ended_sessions": len(ended),
                    },
                )
            )

    def _bearer_claims(self, token: str) -> dict[str, object]:
        """The claims of the change-only token, or else of an access token."""
        try:
            return self._verifier.verify_claims(token, token_type=PASSWORD_CHANGE_TOKEN_TYPE)
        except errors.Unauthenticated as exc:
            if exc.reason != "TOKEN_TYPE_MISMATCH":
                raise
        return self._verifier.verify_claims(token, token_type=ACCESS_TOKEN_TYPE)

    def _issue(
        self, tx: UserWrites, user: UserRecord, session_id: str, *, ends_ns: int
    ) -> tuple[TokenPair, str]:
        """A new pair for a session, and its refresh token's id; neither outlives the session."""
        refresh = self._issuer.refresh_token(
            user_id=user.user_id, session_id=session_id, not_after_ns=ends_ns
        )
        access = self._issuer.access_token(
            identity_of(user, tx.roles()), session_id=session_id, not_after_ns=ends_ns
        )
        pair = TokenPair(access=access, refresh=refresh, user=user, session_id=session_id)
        return pair, refresh.token_id

    def logout(self, caller: Principal) -> str:
        with self._store.write() as tx:
            now = self._clock()
            ended = end_sessions(
                tx,
                [caller.session_id],
                reason="logout",
                now_ns=now,
                lifetime_ns=self.session_lifetime_ns,
            )
            if not ended and tx.session(caller.session_id) is None:
                # A token without a stored session (e.g. one the service minted for itself);
                # a session already ended (a concurrent logout) needs no second revocation.
                tx.record_revocation(
                    session_id=caller.session_id,
                    token_id=None,
                    reason="logout",
                    revoked_ns=now,
                    expires_ns=now + self.session_lifetime_ns,
                )
            tx.emit(
                OutboxEvent(
                    "users.auth.logout",
                    subject=f"users/{caller.user_id}",
                    actor=caller.username,
                    data={"session_id": caller.session_id},
                )
            )
        return caller.session_id

    def sessions(
        self, caller: Principal, user_id: str, *, page_size: int, page_token: str
    ) -> pages.Page[SessionRecord]:
        """The user's live sessions, oldest first: the user themself, or ``users:read``."""
        if caller.user_id != user_id:
            caller.require(Permission.USERS_READ)
        size = pages.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = {"list": "sessions", "user": user_id}
        after = pages.decode(page_token, query=query).get("after") if page_token else None
        if after is not None and not (
            isinstance(after, list)
            and len(after) == 2
            and isinstance(after[0], int)
            and isinstance(after[1], str)
        ):
            raise pages.refuse()
        active_after = self._clock() - times.seconds(self._issuer.refresh_seconds)
        with self._store.read() as reads:
            found = reads.live_sessions(
                user_id,
                active_after_ns=active_after,
                after=None if after is None else (after[0], after[1]),
                limit=size + 1,
            )
        return pages.cut(
            found,
            size,
            lambda last: pages.encode({"after": [last.created_ns, last.session_id]}, query=query),
        )

    def end_session(self, caller: Principal, user_id: str, session_id: str) -> None:
        """End one session of the user, across the mesh: the user themself, or ``users:write``."""
        if caller.user_id != user_id:
            caller.require(Permission.USERS_WRITE)
        with self._store.write() as tx:
            now = self._clock()
            session = tx.session(session_id, lock=True)
            if session is None or session.user_id != user_id or session.revoked_ns is not None:
                raise errors.NotFound(
                    f"user {quoted(user_id)} has no live session {quoted(session_id)}",
                    reason="SESSION_NOT_FOUND",
                    metadata={"session_id": session_id},
                )
            end_sessions(
                tx,
                [session_id],
                reason="session_ended",
                now_ns=now,
                lifetime_ns=self.session_lifetime_ns,
            )
            tx.emit(
                OutboxEvent(
                    "users.auth.session_ended",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"session_id": session_id},
                )
            )

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token; a spent one revokes its whole family (RFC 6819 5.2.2.3)."""
        if not refresh_token:
            raise errors.invalid([errors.FieldViolation("refresh_token", "is required")])
        claims = self._verifier.verify_claims(refresh_token, token_type=REFRESH_TOKEN_TYPE)
        session_id, token_id, user_id = str(claims["sid"]), str(claims["jti"]), str(claims["sub"])
        reused = False
        with self._store.write() as tx:
            now = self._clock()
            # The user before the session, the order of every change that ends a user's
            # sessions (DisableUser, SetUserRoles, UpdateRole), so none of them deadlocks this.
            user = tx.user(user_id=user_id, lock=True)
            session = tx.session(session_id, lock=True)
            if session is None or session.user_id != user_id:
                raise errors.Unauthenticated("refresh token is not known", reason="TOKEN_INVALID")
            if session.revoked_ns is not None:
                raise errors.Unauthenticated("token has been revoked", reason="TOKEN_REVOKED")
            ends_ns = session.created_ns + self._session_max_ns
            if now >= ends_ns:
                # Its tokens already expire by then; this catches ones issued under a longer
                # MESH_SESSION_MAX_SECONDS.
                raise errors.Unauthenticated(
                    "the session reached its maximum lifetime; log in again",
                    reason="SESSION_EXPIRED",
                )
            if session.refresh_token_id != token_id:
                end_sessions(
                    tx,
                    [session_id],
                    reason="refresh_token_reuse",
                    now_ns=now,
                    lifetime_ns=self.session_lifetime_ns,
                )
                tx.emit(
                    OutboxEvent(
                        "users.auth.refresh_reuse_detected",
                        subject=f"users/{user_id}",
                        actor=user.username if user else user_id,
                        data={"session_id": session_id, "token_id": token_id},
                    )
                )
                reused = True
            else:
                if user is None or user.disabled:
                    raise _account_disabled()
                pair, refresh_id = self._issue(tx, user, session_id, ends_ns=ends_ns)
                tx.rotate_refresh(session_id, spent=token_id, fresh=refresh_id, refreshed_ns=now)
                tx.emit(
                    OutboxEvent(
                        "users.auth.refreshed",
                        subject=f"users/{user.user_id}",
                        actor=user.username,
                        data={"session_id": session_id},
                    )
                )
        if reused:
            raise errors.Unauthenticated(
                "refresh token was already used; the session has been revoked",
                reason="REFRESH_TOKEN_REUSED",
            )
        return pair

    def rotate_key(self, caller: Principal) -> SigningKey:
        """Rotate inside the transaction of its event: both commit, or neither."""
        with self._store.write() as tx:
            rotation = self._keys.rotate(tx)
            tx.emit(
                OutboxEvent(
                    "users.auth.signing_key_rotated",
                    subject=f"signingKeys/{rotation.key.kid}",
                    actor=caller.username,
                    data={
                        "kid": rotation.key.kid,
                        "previous_kid": rotation.previous_kid,
                        "published_kids": rotation.published_kids,
                    },
                )
            )
        return rotation.key

    def jwks(self) -> list[dict[str, str]]:
        return self._keys.jwks()
