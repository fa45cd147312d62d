"""Every permission of the mesh, ``resource:action``: the one list policies and roles use."""

from __future__ import annotations

from collections.abc import Mapping
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
    OBJECT_READ = "object:read"
    OBJECT_WRITE = "object:write"
    ACTION_EXECUTE = "action:execute"
    AUDIT_READ = "audit:read"
    AUDIT_WRITE = "audit:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    REVOCATIONS_WATCH = "revocations:watch"
    """Held by service accounts only: the revocation stream is for the services that enforce
    it."""
    TOKENS_INTROSPECT = "tokens:introspect"
    """Held by service accounts: resource servers ask the User Service whether a token is
    active (RFC 7662)."""


DESCRIPTIONS: Mapping[Permission, str] = {
    Permission.ALL: "every permission, those added later included",
    Permission.SCHEMA_READ: "read the ontology on any branch and at any commit",
    Permission.SCHEMA_WRITE: "commit changes to the ontology on unprotected branches",
    Permission.BRANCH_CREATE: "create branches and change their settings",
    Permission.BRANCH_MERGE: "merge one branch into another",
    Permission.BRANCH_DELETE: "delete branches",
    Permission.OBJECT_READ: "read objects and links on any branch and at any commit",
    Permission.OBJECT_WRITE: "create, change and delete objects and links on unprotected branches",
    Permission.ACTION_EXECUTE: "run action types",
    Permission.AUDIT_READ: "query, verify and follow the audit log",
    Permission.AUDIT_WRITE: "publish events to the audit log",
    Permission.USERS_READ: "read users, their roles and their sessions",
    Permission.USERS_WRITE: "create and change users and roles (granting only what one holds)",
    Permission.REVOCATIONS_WATCH: "follow the revocation stream (service accounts)",
    Permission.TOKENS_INTROSPECT: "ask whether a token is active (RFC 7662; service accounts)",
}
"""What each permission allows, in one line, as ListPermissions publishes it."""
