"""What the User Service needs from its storage, independent of how it is kept.

The domain (:mod:`users.service`, :mod:`users.directory`, :mod:`users.revocations`) works
inside transactions it opens with :meth:`UserStore.read` and :meth:`UserStore.write`: a rule
such as "at most N attempts may hold a login reservation" holds only if the reads it makes
and the writes it decides on commit together. :class:`users.sql_store.SqlUserStore`
implements it on SQLite or PostgreSQL. Moments are integer nanoseconds (:mod:`common.times`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from common.outbox import OutboxEvent


@dataclass(frozen=True)
class UserRecord:
    """A user as stored, with role names; the password hash never leaves the domain layer."""

    user_id: str
    username: str
    display_name: str
    email: str
    password_hash: str = field(repr=False)
    disabled: bool
    created_ns: int
    updated_ns: int
    version: int
    roles: tuple[str, ...]
    password_change_required: bool = False
    """Set by an admin's reset: until the user changes it, Login grants only the change."""
    mfa_enrolled: bool = False
    """The user has a confirmed TOTP, so Login asks for a code."""

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class NewUser:
    """What creating a user records; the store assigns nothing but what it must."""

    user_id: str
    username: str
    display_name: str
    email: str
    password_hash: str = field(repr=False)
    roles: tuple[str, ...]
    created_ns: int


@dataclass(frozen=True)
class RoleDefinition:
    """A named set of permissions users are granted together."""

    name: str
    description: str
    permissions: tuple[str, ...]
    mfa_required: bool = False
    """Every holder logs in with a second factor, and enrols first if they have none."""
    builtin: bool = False
    """One of :data:`users.roles.BUILTIN_ROLES`, which nobody changes or deletes."""
    version: int = 1

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class SessionRecord:
    """One login and the refresh-token family it grew."""

    session_id: str
    user_id: str
    created_ns: int
    refreshed_ns: int
    refresh_token_id: str
    """The one refresh token of the family that may still be spent; any other is a reuse."""
    revoked_ns: int | None = None
    revoke_reason: str | None = None
    client_address: str = ""
    """Where the login came from (:mod:`common.origin`)."""
    user_agent: str = ""
    """The login's ``user-agent``, cut to :data:`MAX_USER_AGENT` characters."""


MAX_USER_AGENT = 256


@dataclass(frozen=True)
class ResetTokenRecord:
    """A password reset token as stored: its SHA-256, never the token itself."""

    token_hash: str
    user_id: str
    created_ns: int
    expires_ns: int
    used_ns: int | None = None


@dataclass(frozen=True)
class TotpRecord:
    """A user's TOTP secret, pending until confirmed with a first code."""

    user_id: str
    secret: str = field(repr=False)
    created_ns: int
    confirmed_ns: int | None = None
    last_step: int | None = None
    """The time step of the last code accepted; no code of it or an earlier one is taken."""


@dataclass(frozen=True)
class LoginAttempts:
    """Recent failed logins of one username (known or not) from one client address, and locks."""

    username: str
    client_address: str
    failures: int
    last_failure_ns: int
    locked_until_ns: int | None
    locks: int = 0
    """Locks since the failures were last cleared or forgotten."""
    hard_locked: bool = False
    """Locked until an admin unlocks it (:mod:`users.lockout`)."""


@dataclass(frozen=True)
class Revocation:
    """One entry of the revocation log; ``token_id`` None covers the whole session."""

    sequence: int
    session_id: str
    token_id: str | None
    reason: str
    revoked_ns: int
    expires_ns: int


@dataclass(frozen=True)
class StoredKey:
    """A signing key as the database keeps it: its private key sealed (:mod:`users.keystore`)."""

    kid: str
    sealed: str
    created_ns: int
    retired_ns: int | None
    upcoming: bool
    """The key that will sign after the next rotation, published already."""


@dataclass(frozen=True)
class Forgotten:
    """How many rows one housekeeping pass deleted."""

    revocations: int
    sessions: int
    login_attempts: int


class UsernameTaken(Exception):
    """The username belongs to another user; the transaction can no longer commit."""


class RoleTaken(Exception):
    """The role name is defined already, perhaps by a concurrent transaction."""


class UserReads(Protocol):
    """Reads inside one transaction, all from the same snapshot."""

    def user(
        self, *, user_id: str | None = None, username: str | None = None, lock: bool = False
    ) -> UserRecord | None:
        """One user by id or username.

        ``lock`` holds it against concurrent writers until the transaction ends (only in a write
        transaction).
        """
        ...

    def users_after(self, username: str, *, limit: int) -> list[UserRecord]:
        """Users ordered by username, starting after ``username``."""
        ...

    def roles(self) -> dict[str, RoleDefinition]:
        """Every defined role by name."""
        ...

    def role(self, name: str, *, lock: bool = False) -> RoleDefinition | None:
        """One role; ``lock`` holds it against concurrent writers (write transactions only)."""
        ...

    def role_holders(self, name: str) -> list[str]:
        """The ids of the users granted the role, disabled ones included."""
        ...

    def session(self, session_id: str, *, lock: bool = False) -> SessionRecord | None: ...

    def live_sessions(
        self, user_id: str, *, active_after_ns: int, after: tuple[int, str] | None, limit: int
    ) -> list[SessionRecord]:
        """The user's unrevoked sessions refreshed after ``active_after_ns``, oldest first.

        Ordered by (created_ns, session_id), starting after ``after``.
        """
        ...

    def previous_password_hashes(self, user_id: str, *, limit: int) -> list[str]:
        """Hashes of the user's earlier passwords, the newest first."""
        ...

    def reset_token(self, token_hash: str, *, lock: bool = False) -> ResetTokenRecord | None: ...

    def signing_keys(self, *, lock: bool = False) -> list[StoredKey]:
        """The key ring in its order: the signing key first, the next key last.

        ``lock`` holds it against other rotations until commit.
        """
        ...

    def totp(self, user_id: str) -> TotpRecord | None:
        """The user's TOTP, confirmed or pending; read under the user's lock to decide on it."""
        ...


class UserWrites(UserReads, Protocol):
    """A write transaction: everything done through it commits together, or nothing does."""

    def insert_user(self, user: NewUser) -> None:
        """UsernameTaken when another user holds the name, even one created concurrently."""
        ...

    def update_user(
        self, user: UserRecord, *, updated_ns: int, changes: dict[str, str | bool]
    ) -> None:
        """Set fields (``display_name``, ``email``, ``disabled``) and bump the version."""
        ...

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the hash (a rehash on login); the version stays.

        A rehash is not a change anyone edits against.
        """
        ...

    def set_password(
        self, user_id: str, password_hash: str, *, change_required: bool, keep: int, now_ns: int
    ) -> None:
        """Replace the password, keeping the replaced hash among the ``keep`` newest earlier ones.

        ``change_required`` says whether the user must change it at their next login.
        """
        ...

    def add_reset_token(self, token: ResetTokenRecord) -> None: ...

    def spend_reset_tokens(self, user_id: str, *, used_ns: int) -> None:
        """Mark every unused reset token of the user used: one is redeemed, or superseded."""
        ...

    def set_roles(self, user_id: str, names: Iterable[str]) -> None: ...

    def set_role_mfa_required(self, name: str, required: bool) -> None: ...

    def put_totp(self, totp: TotpRecord) -> None:
        """Make ``totp`` the user's, replacing any earlier one."""
        ...

    def confirm_totp(self, user_id: str, *, confirmed_ns: int, step: int) -> None: ...

    def set_totp_step(self, user_id: str, step: int) -> None:
        """Record the step of the code just accepted."""
        ...

    def replace_recovery_codes(self, user_id: str, code_hashes: Iterable[str]) -> None:
        """The user's recovery codes are these, unused, and no others."""
        ...

    def spend_recovery_code(self, user_id: str, code_hash: str, *, used_ns: int) -> bool:
        """Mark an unused code of the user used; False when it is not one."""
        ...

    def remove_mfa(self, user_id: str) -> bool:
        """Delete the user's TOTP and recovery codes; False when there was no TOTP."""
        ...

    def spend_ticket(self, ticket_id: str, *, expires_ns: int) -> bool:
        """Record a single-use ticket spent (kept until it expires); False when it was."""
        ...

    def insert_role(self, role: RoleDefinition) -> None:
        """RoleTaken when the name is defined, even by a role created concurrently."""
        ...

    def update_role(
        self, role: RoleDefinition, *, description: str, permissions: tuple[str, ...]
    ) -> None:
        """Replace the description and permissions and bump the version."""
        ...

    def delete_role(self, name: str) -> None: ...

    def enabled_admins(self) -> int:
        """The number of enabled admins.

        Concurrent changes to users wait until this transaction ends, so two of them cannot both
        see a second admin.
        """
        ...

    def live_session_ids(self, user_id: str) -> list[str]: ...

    def open_session(self, session: SessionRecord) -> None: ...

    def rotate_refresh(
        self, session_id: str, *, spent: str, fresh: str, refreshed_ns: int
    ) -> None: ...

    def end_session(self, session_id: str, *, reason: str, revoked_ns: int) -> bool:
        """Mark a live session revoked; False when it was not live."""
        ...

    def record_revocation(
        self,
        *,
        session_id: str,
        token_id: str | None,
        reason: str,
        revoked_ns: int,
        expires_ns: int,
    ) -> None:
        """Append to the revocation log.

        Entries commit in the order of their sequences, and the log's watchers are told once this
        transaction commits.
        """
        ...

    def login_attempts(self, username: str, client_address: str, *, now_ns: int) -> LoginAttempts:
        """The pair's attempts, held until the transaction ends.

        They are created with no failures when absent.
        """
        ...

    def held_login_attempts(self, username: str, client_address: str) -> LoginAttempts | None:
        """The pair's attempts held until the transaction ends, None when forgotten."""
        ...

    def set_login_attempts(self, attempts: LoginAttempts) -> None: ...

    def clear_login_attempts(
        self, username: str, client_address: str | None
    ) -> list[LoginAttempts]:
        """Forget the failures and locks of one pair, or of every address with None; them."""
        ...

    def emit(self, event: OutboxEvent) -> None:
        """Write an event to the outbox, to commit with the change it reports."""
        ...

    def replace_signing_keys(self, keys: Sequence[StoredKey]) -> None:
        """Make ``keys`` the whole ring (read with ``lock``); every replica reloads on commit."""
        ...


class UserStore(Protocol):
    """Users, roles, sessions, login attempts, the revocation log and the outbox."""

    def read(self) -> AbstractContextManager[UserReads]: ...

    def write(self) -> AbstractContextManager[UserWrites]: ...

    def record_event(self, event: OutboxEvent) -> None:
        """Write an event in a transaction of its own: a refusal, which changes nothing."""
        ...

    def revocations_after(self, sequence: int, *, limit: int) -> list[Revocation]:
        """Log entries with a greater sequence, in order."""
        ...

    def on_revocation(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in the committing thread) after each commit that revoked."""
        ...

    def on_signing_keys(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit, on any replica, that changed the key ring."""
        ...

    def forget_expired(
        self, *, now_ns: int, session_lifetime_ns: int, failure_reset_ns: int
    ) -> Forgotten:
        """Delete revocations past their expiry and sessions idle past ``session_lifetime_ns``.

        Login attempts forgotten and unlocked are deleted too, and expired reset tokens and
        spent tickets.
        """
        ...

    def migrate(self) -> None: ...

    def close(self) -> None: ...
