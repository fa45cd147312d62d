"""Users and roles: what an admin manages, and what a user may read about themself."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from common import errors, pages
from common.auth import Principal, has_permission
from common.db import Database
from common.permissions import Permission
from users import store
from users.passwords import Passwords, password_problem
from users.revocations import end_sessions
from users.tokens import permissions_of

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MAX_DISPLAY_NAME = 200
MAX_EMAIL = 320
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
UPDATABLE_FIELDS = ("display_name", "email")
_USERS = {"list": "users"}
"""The query a page token of ListUsers belongs to."""


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class UserPage:
    users: list[store.UserRecord]
    next_page_token: str


def _profile_violations(display_name: str, email: str) -> list[errors.FieldViolation]:
    violations = []
    if len(display_name) > MAX_DISPLAY_NAME:
        violations.append(
            errors.FieldViolation(
                "user.display_name", f"must be at most {MAX_DISPLAY_NAME} characters"
            )
        )
    if email and (len(email) > MAX_EMAIL or not re.fullmatch(r"[^@\s]+@[^@\s]+", email)):
        violations.append(errors.FieldViolation("user.email", "is not an email address"))
    return violations


class Directory:
    """The domain behind UserService; callers are checked here beyond the method's policy."""

    def __init__(
        self,
        *,
        db: Database,
        passwords: Passwords,
        session_lifetime: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._session_lifetime = session_lifetime
        self._clock = clock

    def get_user(self, caller: Principal, user_id: str) -> store.UserRecord:
        self._require_self_or_reader(caller, user_id)
        with self._db.read() as conn:
            return self._existing(store.load_user(conn, user_id=user_id), user_id)

    def permissions(
        self, caller: Principal, user_id: str
    ) -> tuple[store.UserRecord, tuple[str, ...]]:
        self._require_self_or_reader(caller, user_id)
        with self._db.read() as conn:
            user = self._existing(store.load_user(conn, user_id=user_id), user_id)
            defined = store.all_roles(conn)
        return user, permissions_of(defined[r][1] for r in user.roles if r in defined)

    def list_roles(self) -> list[RoleDefinition]:
        with self._db.read() as conn:
            return [
                RoleDefinition(name, description, permissions)
                for name, (description, permissions) in store.all_roles(conn).items()
            ]

    def list_users(self, *, page_size: int, page_token: str) -> UserPage:
        size = pages.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        after = pages.decode(page_token, query=_USERS).get("after", "") if page_token else ""
        if not isinstance(after, str):
            raise pages.refuse()
        with self._db.read() as conn:
            found = store.list_users(conn, after_username=after, limit=size + 1)
        page = found[:size]
        more = len(found) > size
        token = pages.encode({"after": page[-1].username}, query=_USERS) if more else ""
        return UserPage(users=page, next_page_token=token)

    def create_user(
        self,
        caller: Principal,
        *,
        username: str,
        password: str,
        display_name: str,
        email: str,
        roles: Sequence[str],
    ) -> store.UserRecord:
        violations = []
        if not USERNAME.fullmatch(username):
            violations.append(
                errors.FieldViolation(
                    "user.username",
                    "must be 3 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
                    "starting with a letter",
                )
            )
        problem = password_problem(password)
        if problem:
            violations.append(errors.FieldViolation("password", problem))
        violations.extend(_profile_violations(display_name, email))
        if violations:
            raise errors.invalid(violations)
        password_hash = self._passwords.hash(password)
        exists = errors.AlreadyExists(
            f"user {username!r} already exists",
            reason="USER_EXISTS",
            metadata={"username": username},
        )
        try:
            with self._db.write() as conn:
                self._check_grantable(conn, caller, roles, field="roles")
                if store.load_user(conn, username=username) is not None:
                    raise exists
                user_id = insert_user(
                    conn,
                    username=username,
                    password_hash=password_hash,
                    display_name=display_name,
                    email=email,
                    roles=roles,
                    now=self._clock(),
                )
                store.emit(
                    conn,
                    "users.user.created",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    username=username,
                    roles=sorted(set(roles)),
                )
                return self._existing(store.load_user(conn, user_id=user_id), user_id)
        except sa.exc.IntegrityError as exc:
            # A concurrent CreateUser took the name between our check and our insert.
            raise exists from exc

    def update_user(
        self,
        caller: Principal,
        *,
        user_id: str,
        paths: Sequence[str],
        display_name: str,
        email: str,
        etag: str,
    ) -> store.UserRecord:
        unknown = [p for p in paths if p not in UPDATABLE_FIELDS]
        violations = []
        if not paths:
            violations.append(errors.FieldViolation("update_mask", "names no field"))
        if unknown:
            violations.append(
                errors.FieldViolation(
                    "update_mask",
                    f"cannot update {', '.join(unknown)}; updatable: {', '.join(UPDATABLE_FIELDS)}",
                )
            )
        violations.extend(
            _profile_violations(
                display_name if "display_name" in paths else "",
                email if "email" in paths else "",
            )
        )
        if violations:
            raise errors.invalid(violations)
        with self._db.write() as conn:
            user = self._existing(store.load_user(conn, user_id=user_id, lock=True), user_id)
            self._check_etag(user, etag)
            changes: dict[str, str] = {}
            if "display_name" in paths:
                changes["display_name"] = display_name
            if "email" in paths:
                changes["email"] = email
            self._bump(conn, user, **changes)
            store.emit(
                conn,
                "users.user.updated",
                subject=f"users/{user_id}",
                actor=caller.username,
                fields=sorted(changes),
            )
            return self._existing(store.load_user(conn, user_id=user_id), user_id)

    def set_enabled(self, caller: Principal, user_id: str, *, enabled: bool) -> store.UserRecord:
        with self._db.write() as conn:
            user = self._existing(store.load_user(conn, user_id=user_id, lock=True), user_id)
            if not enabled:
                if user_id == caller.user_id:
                    raise errors.FailedPrecondition(
                        "you cannot disable yourself", reason="CANNOT_DISABLE_SELF"
                    )
                if not user.disabled and "admin" in user.roles:
                    self._keep_an_admin(conn)
            if user.disabled == (not enabled):
                return user
            now = self._clock()
            self._bump(conn, user, disabled=not enabled)
            if not enabled:
                end_sessions(
                    conn,
                    store.live_session_ids(conn, user_id),
                    reason="user_disabled",
                    now=now,
                    lifetime=self._session_lifetime,
                )
            store.emit(
                conn,
                "users.user.enabled" if enabled else "users.user.disabled",
                subject=f"users/{user_id}",
                actor=caller.username,
                username=user.username,
            )
            return self._existing(store.load_user(conn, user_id=user_id), user_id)

    def set_roles(
        self, caller: Principal, user_id: str, roles: Sequence[str], *, etag: str
    ) -> store.UserRecord:
        wanted = tuple(sorted(set(roles)))
        with self._db.write() as conn:
            user = self._existing(store.load_user(conn, user_id=user_id, lock=True), user_id)
            self._check_etag(user, etag)
            added = [r for r in wanted if r not in user.roles]
            removed = [r for r in user.roles if r not in wanted]
            self._check_grantable(conn, caller, added, field="roles")
            if "admin" in removed and not user.disabled:
                self._keep_an_admin(conn)
            store.set_roles(conn, user_id, wanted)
            self._bump(conn, user)
            if removed:
                # Tokens carry permissions; ending the sessions withdraws the removed ones now.
                end_sessions(
                    conn,
                    store.live_session_ids(conn, user_id),
                    reason="roles_reduced",
                    now=self._clock(),
                    lifetime=self._session_lifetime,
                )
            store.emit(
                conn,
                "users.user.roles_changed",
                subject=f"users/{user_id}",
                actor=caller.username,
                added=added,
                removed=removed,
            )
            return self._existing(store.load_user(conn, user_id=user_id), user_id)

    @staticmethod
    def _require_self_or_reader(caller: Principal, user_id: str) -> None:
        if caller.user_id != user_id:
            caller.require(Permission.USERS_READ)

    @staticmethod
    def _existing(user: store.UserRecord | None, user_id: str) -> store.UserRecord:
        if user is None:
            raise errors.NotFound(
                f"user {user_id!r} does not exist",
                reason="USER_NOT_FOUND",
                metadata={"user_id": user_id},
            )
        return user

    @staticmethod
    def _check_etag(user: store.UserRecord, etag: str) -> None:
        if etag and etag != user.etag:
            raise errors.Aborted(
                "the user changed since it was read; read it again",
                reason="ETAG_MISMATCH",
                metadata={"etag": user.etag},
            )

    @staticmethod
    def _check_grantable(
        conn: sa.Connection, caller: Principal, roles: Sequence[str], *, field: str
    ) -> None:
        """Nobody grants a role carrying a permission they do not hold themself."""
        defined = store.all_roles(conn)
        unknown = [r for r in roles if r not in defined]
        if unknown:
            raise errors.invalid(
                [errors.FieldViolation(field, f"unknown role {r!r}") for r in unknown]
            )
        for role in roles:
            missing = [p for p in defined[role][1] if not has_permission(caller.permissions, p)]
            if missing:
                raise errors.PermissionDenied(
                    f"granting role {role!r} needs {', '.join(missing)}",
                    reason="ROLE_NOT_GRANTABLE",
                    metadata={"role": role},
                )

    @staticmethod
    def _keep_an_admin(conn: sa.Connection) -> None:
        """Refuse to lose the last enabled admin, even to two concurrent changes.

        On PostgreSQL the table lock makes such changes take turns, so the second one counts
        after the first has committed; SQLite write transactions take turns already.
        """
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        if store.count_enabled_admins(conn) <= 1:
            raise errors.FailedPrecondition(
                "the last enabled admin must stay an enabled admin", reason="LAST_ADMIN"
            )

    def _bump(self, conn: sa.Connection, user: store.UserRecord, **values: object) -> None:
        conn.execute(
            store.users.update()
            .where(store.users.c.id == user.user_id)
            .values(version=user.version + 1, updated_at=self._clock(), **values)
        )


def insert_user(
    conn: sa.Connection,
    *,
    username: str,
    password_hash: str,
    display_name: str,
    email: str,
    roles: Sequence[str],
    now: float,
) -> str:
    user_id = str(uuid.uuid4())
    conn.execute(
        store.users.insert().values(
            id=user_id,
            username=username,
            display_name=display_name,
            email=email,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    store.set_roles(conn, user_id, roles)
    return user_id
