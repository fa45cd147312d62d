"""Every permission of the mesh, ``resource:action``: the one list policies and roles use."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """What a role grants and a method's policy requires.

    ``ALL`` grants every other one, and ``resource:*`` (in a role) every action on one resource.
    """

    ALL = "*"
    SCHEMA_READ = "schema:read"
    SCHEMA_WRITE = "schema:write"
    BRANCH_CREATE = "branch:create"
    BRANCH_MERGE = "branch:merge"
    BRANCH_DELETE = "branch:delete"
    ACTION_EXECUTE = "action:execute"
    AUDIT_READ = "audit:read"
    AUDIT_WRITE = "audit:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    REVOCATIONS_WATCH = "revocations:watch"
    """Held by service accounts only: the revocation stream is for the services that enforce
    it."""
