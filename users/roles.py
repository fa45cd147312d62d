"""Roles: the built-in ones every User Service starts with, and what makes a custom one valid.

Admins grant the built-in roles but never redefine or delete them; custom roles are named sets
of the permissions :class:`common.permissions.Permission` defines, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common import errors
from common.errors import quoted
from common.permissions import Permission
from users.store import RoleDefinition


def _role(name: str, description: str, *permissions: Permission) -> RoleDefinition:
    return RoleDefinition(name, description, tuple(permissions), builtin=True)


BUILTIN_ROLES: dict[str, RoleDefinition] = {
    role.name: role
    for role in (
        _role("admin", "everything, including users and signing keys", Permission.ALL),
        _role(
            "editor",
            "change the ontology and its objects on branches and run actions",
            Permission.SCHEMA_READ,
            Permission.SCHEMA_WRITE,
            Permission.OBJECT_READ,
            Permission.OBJECT_WRITE,
            Permission.BRANCH_CREATE,
            Permission.BRANCH_MERGE,
            Permission.BRANCH_DELETE,
            Permission.ACTION_EXECUTE,
        ),
        _role(
            "viewer",
            "read the ontology and its objects",
            Permission.SCHEMA_READ,
            Permission.OBJECT_READ,
        ),
        _role(
            "auditor",
            "read the audit log and the ontology",
            Permission.AUDIT_READ,
            Permission.SCHEMA_READ,
        ),
        _role(
            "service",
            "service accounts of the mesh calling each other",
            Permission.AUDIT_WRITE,
            Permission.USERS_READ,
            Permission.SCHEMA_READ,
            Permission.REVOCATIONS_WATCH,
            Permission.TOKENS_INTROSPECT,
        ),
    )
}

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
MAX_DESCRIPTION = 200
UPDATABLE_FIELDS = ("description", "permissions")
PERMISSIONS = tuple(p.value for p in Permission)
"""What a role may grant: every permission of the mesh, by its name."""


def role_violations(
    role: str, description: str, permissions: Sequence[str], *, field: str = "role"
) -> list[errors.FieldViolation]:
    """What is wrong with a role's name, description and permissions, each on its field."""
    violations = []
    if not ROLE_NAME.fullmatch(role):
        violations.append(
            errors.FieldViolation(
                f"{field}.name",
                "must be 2 to 64 characters: lowercase letters, digits, '_' or '-', "
                "starting with a letter",
            )
        )
    violations.extend(description_violations(description, field=field))
    violations.extend(permission_violations(permissions, field=field))
    return violations


def description_violations(description: str, *, field: str = "role") -> list[errors.FieldViolation]:
    if len(description) > MAX_DESCRIPTION:
        return [
            errors.FieldViolation(
                f"{field}.description", f"must be at most {MAX_DESCRIPTION} characters"
            )
        ]
    return []


def permission_violations(
    permissions: Sequence[str], *, field: str = "role"
) -> list[errors.FieldViolation]:
    """Each permission the mesh does not define, naming the ones it does; none at all too."""
    if not permissions:
        return [errors.FieldViolation(f"{field}.permissions", "must name at least one permission")]
    return [
        errors.FieldViolation(
            f"{field}.permissions[{i}]",
            f"unknown permission {quoted(p)}; the mesh defines {', '.join(PERMISSIONS)}",
            "UNKNOWN_PERMISSION",
        )
        for i, p in enumerate(permissions)
        if p not in PERMISSIONS
    ]
