"""Users and roles: what an admin manages, and what a user may read about themself."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from common import errors, pages, times
from common.auth import Principal, has_permission
from common.errors import quoted
from common.outbox import OutboxEvent
from common.permissions import DESCRIPTIONS, Permission
from users import roles as role_rules
from users.credentials import Credentials, new_reset_token, refused
from users.revocations import end_sessions
from users.store import (
    NewUser,
    ResetTokenRecord,
    RoleDefinition,
    RoleTaken,
    UsernameTaken,
    UserReads,
    UserRecord,
    UserStore,
    UserWrites,
)
from users.tokens import permissions_of

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MAX_DISPLAY_NAME = 200
MAX_EMAIL = 320
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
UPDATABLE_FIELDS = ("display_name", "email")
_USERS = {"list": "users"}
"""The query a page token of ListUsers belongs to."""


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
        store: UserStore,
        credentials: Credentials,
        reset_token_seconds: int,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._passwords = credentials.passwords
        self._session_lifetime_ns = credentials.session_lifetime_ns
        self._reset_token_ns = times.seconds(reset_token_seconds)
        self._clock = clock

    def get_user(self, caller: Principal, user_id: str) -> UserRecord:
        self._require_self_or_reader(caller, user_id)
        with self._store.read() as reads:
            return _existing(reads, user_id)

    def permissions(self, caller: Principal, user_id: str) -> tuple[UserRecord, tuple[str, ...]]:
        self._require_self_or_reader(caller, user_id)
        with self._store.read() as reads:
            user = _existing(reads, user_id)
            return user, permissions_of(user.roles, reads.roles())

    def list_roles(self) -> list[RoleDefinition]:
        with self._store.read() as reads:
            return list(reads.roles().values())

    @staticmethod
    def list_permissions() -> list[tuple[str, str]]:
        """Every permission a role may grant, with what it allows."""
        return [(p.value, DESCRIPTIONS[p]) for p in Permission]

    def create_role(
        self, caller: Principal, *, name: str, description: str, permissions: Sequence[str]
    ) -> RoleDefinition:
        """Define a custom role; only with every permission it grants, so nobody escalates."""
        violations = role_rules.role_violations(name, description, permissions)
        if violations:
            raise errors.invalid(violations)
        role = RoleDefinition(name, description, tuple(sorted(set(permissions))))
        exists = errors.AlreadyExists(
            f"role {quoted(name)} already exists", reason="ROLE_EXISTS", metadata={"role": name}
        )
        try:
            with self._store.write() as tx:
                _require_holds(caller, role.permissions, role=name)
                if tx.role(name) is not None:
                    raise exists
                tx.insert_role(role)
                tx.emit(
                    OutboxEvent(
                        "users.role.created",
                        subject=f"roles/{name}",
                        actor=caller.username,
                        data={"role": name, "permissions": list(role.permissions)},
                    )
                )
                return _existing_role(tx, name)
        except RoleTaken as exc:
            raise exists from exc  # a concurrent CreateRole took the name

    def update_role(
        self,
        caller: Principal,
        *,
        name: str,
        paths: Sequence[str],
        description: str,
        permissions: Sequence[str],
        etag: str,
    ) -> RoleDefinition:
        """Change a custom role; removing a permission ends every session of its holders.

        Tokens carry permissions, so ending the sessions withdraws the removed ones now, as
        SetUserRoles does when it removes a role; added ones reach tokens at the next refresh.
        The caller must hold every permission of the role before and after.
        """
        unknown = [p for p in paths if p not in role_rules.UPDATABLE_FIELDS]
        violations = []
        if not paths:
            violations.append(errors.FieldViolation("update_mask", "names no field"))
        if unknown:
            violations.append(
                errors.FieldViolation(
                    "update_mask",
                    f"cannot update {', '.join(unknown)}; "
                    f"updatable: {', '.join(role_rules.UPDATABLE_FIELDS)}",
                )
            )
        if "description" in paths:
            violations.extend(role_rules.description_violations(description))
        if "permissions" in paths:
            violations.extend(role_rules.permission_violations(permissions))
        if violations:
            raise errors.invalid(violations)
        with self._store.write() as tx:
            role = _changeable_role(tx, name, etag)
            wanted = tuple(sorted(set(permissions))) if "permissions" in paths else role.permissions
            _require_holds(caller, (*role.permissions, *wanted), role=name)
            added = [p for p in wanted if p not in role.permissions]
            removed = [p for p in role.permissions if p not in wanted]
            tx.update_role(
                role,
                description=description if "description" in paths else role.description,
                permissions=wanted,
            )
            ended: list[str] = []
            if removed:
                now = self._clock()
                for user_id in tx.role_holders(name):
                    # Held, so a login or refresh of theirs that read the role as it was has
                    # committed its session (which this ends), or waits and reads it as it is.
                    tx.user(user_id=user_id, lock=True)
                    ended += end_sessions(
                        tx,
                        tx.live_session_ids(user_id),
                        reason="role_reduced",
                        now_ns=now,
                        lifetime_ns=self._session_lifetime_ns,
                    )
            tx.emit(
                OutboxEvent(
                    "users.role.updated",
                    subject=f"roles/{name}",
                    actor=caller.username,
                    data={
                        "role": name,
                        "fields": sorted(set(paths)),
                        "added": added,
                        "removed": removed,
                        "ended_sessions": len(ended),
                    },
                )
            )
            return _existing_role(tx, name)

    def delete_role(self, caller: Principal, *, name: str, etag: str) -> None:
        """Delete a custom role nobody holds: taking it from its holders is SetUserRoles' job."""
        with self._store.write() as tx:
            role = _changeable_role(tx, name, etag)
            _require_holds(caller, role.permissions, role=name)
            holders = tx.role_holders(name)
            if holders:
                raise errors.FailedPrecondition(
                    (
                        f"role {quoted(name)} is granted to "
                        f"{len(holders)} user(s); take it from them first"
                    ),
                    reason="ROLE_IN_USE",
                    metadata={"role": name, "holders": str(len(holders))},
                )
            tx.delete_role(name)
            tx.emit(
                OutboxEvent(
                    "users.role.deleted",
                    subject=f"roles/{name}",
                    actor=caller.username,
                    data={"role": name, "permissions": list(role.permissions)},
                )
            )

    def list_users(self, *, page_size: int, page_token: str) -> pages.Page[UserRecord]:
        size = pages.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        with self._store.read() as reads:
            found = reads.users_after(pages.after(page_token, query=_USERS), limit=size + 1)
        return pages.cut_after(found, size, lambda user: user.username, query=_USERS)

    def create_user(
        self,
        caller: Principal,
        *,
        username: str,
        password: str,
        display_name: str,
        email: str,
        roles: Sequence[str],
        user_roles: Sequence[str] = (),
    ) -> UserRecord:
        """``user_roles`` are roles set on the user itself, where they are output only.

        They are refused rather than ignored: a client that sent them meant to grant them.
        """
        violations = []
        if user_roles:
            violations.append(
                errors.FieldViolation(
                    "user.roles",
                    "is output only; name the roles to grant in the request's roles field",
                    "OUTPUT_ONLY_FIELD",
                )
            )
        if not USERNAME.fullmatch(username):
            violations.append(
                errors.FieldViolation(
                    "user.username",
                    "must be 3 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
                    "starting with a letter",
                )
            )
        refusal = self._credentials.judge(password, context=(username, email, display_name))
        if refusal is not None:
            violations.extend(refused("password", refusal).violations)
        violations.extend(_profile_violations(display_name, email))
        if refusal is not None and len(violations) == 1:
            raise refused("password", refusal)  # its own reason, as for every new password
        if violations:
            raise errors.invalid(violations)
        password_hash = self._passwords.hash(password)
        exists = errors.AlreadyExists(
            f"user {quoted(username)} already exists",
            reason="USER_EXISTS",
            metadata={"username": username},
        )
        try:
            with self._store.write() as tx:
                _hold_roles(tx, roles)
                _check_grantable(tx, caller, roles, field="roles")
                if tx.user(username=username) is not None:
                    raise exists
                user_id = add_user(
                    tx,
                    username=username,
                    password_hash=password_hash,
                    display_name=display_name,
                    email=email,
                    roles=roles,
                    actor=caller.username,
                    now_ns=self._clock(),
                )
                return _existing(tx, user_id)
        except UsernameTaken as exc:
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
    ) -> UserRecord:
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
        with self._store.write() as tx:
            user = _existing(tx, user_id, lock=True)
            _check_etag(user, etag)
            changes: dict[str, str | bool] = {}
            if "display_name" in paths:
                changes["display_name"] = display_name
            if "email" in paths:
                changes["email"] = email
            tx.update_user(user, updated_ns=self._clock(), changes=changes)
            tx.emit(
                OutboxEvent(
                    "users.user.updated",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"fields": sorted(changes)},
                )
            )
            return _existing(tx, user_id)

    @contextmanager
    def _refusals_recorded(self, caller: Principal, user_id: str, action: str) -> Iterator[None]:
        """A change refused for what it would do to the admins is recorded, then raised."""
        try:
            yield
        except errors.FailedPrecondition as refusal:
            if refusal.reason in ADMIN_REFUSALS:
                self._store.record_event(
                    OutboxEvent(
                        "users.user.change_refused",
                        subject=f"users/{user_id}",
                        actor=caller.username,
                        data={"action": action, "reason": refusal.reason},
                    )
                )
            raise

    def set_enabled(self, caller: Principal, user_id: str, *, enabled: bool) -> UserRecord:
        with self._refusals_recorded(caller, user_id, "enable" if enabled else "disable"):
            return self._set_enabled(caller, user_id, enabled=enabled)

    def _set_enabled(self, caller: Principal, user_id: str, *, enabled: bool) -> UserRecord:
        with self._store.write() as tx:
            user = _existing(tx, user_id, lock=True)
            if not enabled:
                if user_id == caller.user_id:
                    raise errors.FailedPrecondition(
                        "you cannot disable yourself", reason="CANNOT_DISABLE_SELF"
                    )
                if not user.disabled and "admin" in user.roles:
                    _keep_an_admin(tx)
            if user.disabled == (not enabled):
                return user
            now = self._clock()
            tx.update_user(user, updated_ns=now, changes={"disabled": not enabled})
            if not enabled:
                end_sessions(
                    tx,
                    tx.live_session_ids(user_id),
                    reason="user_disabled",
                    now_ns=now,
                    lifetime_ns=self._session_lifetime_ns,
                )
            tx.emit(
                OutboxEvent(
                    "users.user.enabled" if enabled else "users.user.disabled",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"username": user.username},
                )
            )
            return _existing(tx, user_id)

    def set_roles(
        self, caller: Principal, user_id: str, roles: Sequence[str], *, etag: str
    ) -> UserRecord:
        with self._refusals_recorded(caller, user_id, "set_roles"):
            return self._set_roles(caller, user_id, roles, etag=etag)

    def _set_roles(
        self, caller: Principal, user_id: str, roles: Sequence[str], *, etag: str
    ) -> UserRecord:
        wanted = tuple(sorted(set(roles)))
        with self._store.write() as tx:
            _hold_roles(tx, wanted)
            user = _existing(tx, user_id, lock=True)
            _check_etag(user, etag)
            added = [r for r in wanted if r not in user.roles]
            removed = [r for r in user.roles if r not in wanted]
            _check_grantable(tx, caller, added, field="roles")
            if "admin" in removed and not user.disabled:
                _keep_an_admin(tx)
            now = self._clock()
            tx.set_roles(user_id, wanted)
            tx.update_user(user, updated_ns=now, changes={})
            if removed:
                # Tokens carry permissions; ending the sessions withdraws the removed ones now.
                end_sessions(
                    tx,
                    tx.live_session_ids(user_id),
                    reason="roles_reduced",
                    now_ns=now,
                    lifetime_ns=self._session_lifetime_ns,
                )
            tx.emit(
                OutboxEvent(
                    "users.user.roles_changed",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"added": added, "removed": removed},
                )
            )
            return _existing(tx, user_id)

    def set_password(self, caller: Principal, user_id: str, password: str) -> UserRecord:
        """An admin's reset: a temporary password the user must change at their next login."""
        with self._store.read() as reads:
            user = _existing(reads, user_id)
        password_hash = self._credentials.new_hash(user, password, field="password")
        with self._store.write() as tx:
            now = self._clock()
            current = _existing(tx, user_id, lock=True)
            ended = self._credentials.put(
                tx,
                current,
                password_hash,
                change_required=True,
                reason="password_reset",
                now_ns=now,
            )
            tx.emit(
                OutboxEvent(
                    "users.user.password_reset",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"username": current.username, "ended_sessions": len(ended)},
                )
            )
            return _existing(tx, user_id)

    def issue_reset_token(self, caller: Principal, user_id: str) -> tuple[str, int]:
        """A single-use reset token for the user, and when it expires; earlier ones are spent.

        The mesh sends no mail: the admin hands the token to the user, who redeems it with
        ResetPassword. Only its SHA-256 is stored.
        """
        token, token_hash = new_reset_token()
        with self._store.write() as tx:
            now = self._clock()
            user = _existing(tx, user_id, lock=True)
            if user.disabled:
                raise errors.FailedPrecondition(
                    "the user is disabled; enable them first", reason="ACCOUNT_DISABLED"
                )
            tx.spend_reset_tokens(user_id, used_ns=now)
            expires_ns = now + self._reset_token_ns
            tx.add_reset_token(
                ResetTokenRecord(
                    token_hash=token_hash, user_id=user_id, created_ns=now, expires_ns=expires_ns
                )
            )
            tx.emit(
                OutboxEvent(
                    "users.user.password_reset_token_issued",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"username": user.username, "expire_time": times.to_rfc3339(expires_ns)},
                )
            )
        return token, expires_ns

    def unlock(self, caller: Principal, user_id: str) -> UserRecord:
        """End every lock of the user's username, from every address, and forget its failures."""
        with self._store.write() as tx:
            user = _existing(tx, user_id, lock=True)
            cleared = tx.clear_login_attempts(user.username, None)
            tx.emit(
                OutboxEvent(
                    "users.auth.unlocked",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={
                        "username": user.username,
                        "client_addresses": [
                            a.client_address
                            for a in cleared
                            if a.hard_locked
                            or (a.locked_until_ns is not None and a.locked_until_ns > self._clock())
                        ],
                    },
                )
            )
            return user

    def reset_mfa(self, caller: Principal, user_id: str) -> UserRecord:
        """Remove the user's TOTP (confirmed or pending) and recovery codes: a lost device.

        Their sessions stay: they were opened with the second factor; an admin who thinks it
        stolen ends them too (DeleteSession, DisableUser).
        """
        with self._store.write() as tx:
            user = _existing(tx, user_id, lock=True)
            if not tx.remove_mfa(user_id):
                raise errors.FailedPrecondition(
                    f"user {quoted(user_id)} has no TOTP to reset", reason="MFA_NOT_ENROLLED"
                )
            tx.emit(
                OutboxEvent(
                    "users.user.mfa_reset",
                    subject=f"users/{user_id}",
                    actor=caller.username,
                    data={"username": user.username, "was_confirmed": user.mfa_enrolled},
                )
            )
            return _existing(tx, user_id)

    def set_role_mfa_required(
        self, caller: Principal, name: str, *, required: bool
    ) -> RoleDefinition:
        """Require (or stop requiring) a second factor of every holder of the role.

        Holders without TOTP get Keycloak's "configure OTP" at their next login; sessions
        already open stay.
        """
        if not name:
            raise errors.invalid([errors.FieldViolation("name", "is required")])
        with self._store.write() as tx:
            if name not in tx.roles():
                raise errors.NotFound(
                    f"role {quoted(name)} does not exist",
                    reason="ROLE_NOT_FOUND",
                    metadata={"role": name},
                )
            tx.set_role_mfa_required(name, required)
            tx.emit(
                OutboxEvent(
                    "users.role.mfa_required_changed",
                    subject=f"roles/{name}",
                    actor=caller.username,
                    data={"role": name, "mfa_required": required},
                )
            )
            return tx.roles()[name]

    @staticmethod
    def _require_self_or_reader(caller: Principal, user_id: str) -> None:
        if caller.user_id != user_id:
            caller.require(Permission.USERS_READ)


def _existing(reads: UserReads, user_id: str, *, lock: bool = False) -> UserRecord:
    user = reads.user(user_id=user_id, lock=lock)
    if user is None:
        raise errors.NotFound(
            f"user {quoted(user_id)} does not exist",
            reason="USER_NOT_FOUND",
            metadata={"user_id": user_id},
        )
    return user


def _check_etag(user: UserRecord, etag: str) -> None:
    if etag and etag != user.etag:
        raise errors.Aborted(
            "the user changed since it was read; read it again",
            reason="ETAG_MISMATCH",
            metadata={"etag": user.etag},
        )


def _existing_role(reads: UserReads, name: str, *, lock: bool = False) -> RoleDefinition:
    role = reads.role(name, lock=lock)
    if role is None:
        raise errors.NotFound(
            f"role {quoted(name)} does not exist", reason="ROLE_NOT_FOUND", metadata={"role": name}
        )
    return role


def _changeable_role(reads: UserReads, name: str, etag: str) -> RoleDefinition:
    """The custom role to change, held until the transaction ends; never a built-in one."""
    role = _existing_role(reads, name, lock=True)
    if role.builtin:
        raise errors.FailedPrecondition(
            f"role {quoted(name)} is built in; it cannot be changed or deleted",
            reason="ROLE_BUILTIN",
            metadata={"role": name},
        )
    if etag and etag != role.etag:
        raise errors.Aborted(
            "the role changed since it was read; read it again",
            reason="ETAG_MISMATCH",
            metadata={"etag": role.etag},
        )
    return role


def _hold_roles(tx: UserWrites, names: Iterable[str]) -> None:
    """Hold the roles about to be granted until the transaction ends.

    A concurrent DeleteRole then either finds the grant or takes the role before it is read;
    UpdateRole's changes and the grants of its role take turns. Roles are always held before
    users (as UpdateRole holds the role, then its holders), so neither waits for the other.
    """
    for name in sorted(set(names)):
        tx.role(name, lock=True)


def _check_grantable(
    reads: UserReads, caller: Principal, roles: Sequence[str], *, field: str
) -> None:
    """Nobody grants a role carrying a permission they do not hold themself."""
    defined = reads.roles()
    unknown = [r for r in roles if r not in defined]
    if unknown:
        raise errors.invalid(
            [errors.FieldViolation(field, f"unknown role {quoted(r)}") for r in unknown]
        )
    for role in roles:
        _require_holds(caller, defined[role].permissions, role=role)


def _require_holds(caller: Principal, permissions: Sequence[str], *, role: str) -> None:
    """Granting, defining or changing a role needs every permission it carries (or carried).

    Otherwise an admin holding only ``users:write`` could hand anyone ``*`` by way of a role.
    """
    missing = sorted({p for p in permissions if not has_permission(caller.permissions, p)})
    if missing:
        raise errors.PermissionDenied(
            f"role {quoted(role)} carries {', '.join(missing)}, which you do not hold",
            reason="ROLE_NOT_GRANTABLE",
            metadata={"role": role, "missing": ",".join(missing)},
        )


ADMIN_REFUSALS = frozenset({"CANNOT_DISABLE_SELF", "LAST_ADMIN"})
"""Admin actions refused for what they would do, each recorded as ``users.user.change_refused``."""


def _keep_an_admin(tx: UserWrites) -> None:
    """Refuse to lose the last enabled admin, even to two concurrent changes."""
    if tx.enabled_admins() <= 1:
        raise errors.FailedPrecondition(
            "the last enabled admin must stay an enabled admin", reason="LAST_ADMIN"
        )


def add_user(
    tx: UserWrites,
    *,
    username: str,
    password_hash: str,
    display_name: str,
    email: str,
    roles: Sequence[str],
    actor: str,
    now_ns: int,
) -> str:
    """Insert a user with a fresh id and report it; the id.

    UsernameTaken when the name is held, even by a user created concurrently.
    """
    user = NewUser(
        user_id=str(uuid.uuid4()),
        username=username,
        display_name=display_name,
        email=email,
        password_hash=password_hash,
        roles=tuple(sorted(set(roles))),
        created_ns=now_ns,
    )
    tx.insert_user(user)
    tx.emit(
        OutboxEvent(
            "users.user.created",
            subject=f"users/{user.user_id}",
            actor=actor,
            data={"username": username, "roles": list(user.roles)},
        )
    )
    return user.user_id
