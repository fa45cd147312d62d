"""The roles every User Service starts with; admins may grant them but not redefine them."""

from __future__ import annotations

from common.permissions import Permission
from users.store import RoleDefinition


def _role(name: str, description: str, *permissions: Permission) -> RoleDefinition:
    return RoleDefinition(name, description, tuple(permissions))


BUILTIN_ROLES: dict[str, RoleDefinition] = {
    role.name: role
    for role in (
        _role("admin", "everything, including users and signing keys", Permission.ALL),
        _role(
            "editor",
            "change the ontology on branches and run actions",
            Permission.SCHEMA_READ,
            Permission.SCHEMA_WRITE,
            Permission.BRANCH_CREATE,
            Permission.BRANCH_MERGE,
            Permission.BRANCH_DELETE,
            Permission.ACTION_EXECUTE,
        ),
        _role("viewer", "read the ontology", Permission.SCHEMA_READ),
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
        ),
    )
}
