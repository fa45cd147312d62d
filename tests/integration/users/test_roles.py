"""Custom roles over a real port, defined, changed and deleted by admins.

Nobody defines or changes a role past their own permissions, and every change reaches tokens:
at the next refresh, or at once when it takes a permission away.
"""

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from common.permissions import Permission
from tests.support.errors import details, error_info, violated_fields
from tests.support.outbox import last_seq, outbox_rows
from tests.support.users import bearer, rejected
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def as_admin(admin):
    return bearer(admin.access_token)


def _create_role(users, caller, name, *permissions, description=""):
    return users.users.CreateRole(
        users_pb.CreateRoleRequest(
            role=resources.Role(name=name, description=description, permissions=list(permissions))
        ),
        metadata=caller,
        timeout=10,
    )


def _update_role(users, caller, name, paths, etag="", **fields):
    return users.users.UpdateRole(
        users_pb.UpdateRoleRequest(
            role=resources.Role(name=name, etag=etag, **fields),
            update_mask=FieldMask(paths=paths),
        ),
        metadata=caller,
        timeout=10,
    )


def _create_user(users, caller, username, roles):
    return users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=username), password=PASSWORD, roles=roles
        ),
        metadata=caller,
        timeout=10,
    )


def _permissions(users, token):
    return list(
        users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10).permissions
    )


def test_list_permissions_is_the_mesh_s_one_list(users, as_admin):
    listed = users.users.ListPermissions(
        users_pb.ListPermissionsRequest(), metadata=as_admin, timeout=10
    ).permissions
    assert [p.name for p in listed] == [p.value for p in Permission]
    assert all(p.description for p in listed)


def test_a_custom_role_grants_exactly_its_permissions(users, as_admin):
    role = _create_role(
        users, as_admin, "log-reader", "audit:read", "audit:read", description="reads the log"
    )
    assert (role.name, list(role.permissions), role.builtin) == (
        "log-reader",
        ["audit:read"],
        False,
    )
    assert role.etag
    listed = users.users.ListRoles(users_pb.ListRolesRequest(), metadata=as_admin, timeout=10)
    by_name = {r.name: r for r in listed.roles}
    assert by_name["log-reader"] == role
    assert by_name["admin"].builtin and by_name["viewer"].builtin
    _create_user(users, as_admin, "reader", ["log-reader"])
    assert _permissions(users, users.login("reader", PASSWORD).access_token) == ["audit:read"]


def test_bad_roles_are_refused_field_by_field(users, as_admin):
    with pytest.raises(grpc.RpcError) as caught:
        _create_role(users, as_admin, "X y", "schema:read", "schema:fly", description="d" * 201)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == [
        "role.name",
        "role.description",
        "role.permissions[1]",
    ]
    with pytest.raises(grpc.RpcError) as caught:
        _create_role(users, as_admin, "nothing")
    assert violated_fields(caught.value) == ["role.permissions"]
    assert rejected(_create_role, users, as_admin, "viewer", "schema:read") == (
        grpc.StatusCode.ALREADY_EXISTS,
        "ROLE_EXISTS",
    )


def test_an_unknown_permission_names_the_allowed_ones(users, as_admin):
    with pytest.raises(grpc.RpcError) as caught:
        _create_role(users, as_admin, "flyer", "schema:fly")
    (bad,) = details(caught.value)["BadRequest"]
    (violation,) = bad.field_violations
    assert violation.reason == "UNKNOWN_PERMISSION"
    assert all(p.value in violation.description for p in Permission)


def test_built_in_roles_cannot_change(users, as_admin):
    assert rejected(
        _update_role, users, as_admin, "viewer", ["permissions"], permissions=["audit:read"]
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_BUILTIN")
    assert rejected(
        users.users.DeleteRole, users_pb.DeleteRoleRequest(name="admin"), metadata=as_admin
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_BUILTIN")
    assert rejected(
        users.users.DeleteRole, users_pb.DeleteRoleRequest(name="nonesuch"), metadata=as_admin
    ) == (grpc.StatusCode.NOT_FOUND, "ROLE_NOT_FOUND")


def test_role_managers_cannot_escalate(users, as_admin):
    _create_role(users, as_admin, "user-admin", "users:read", "users:write", "audit:read")
    _create_user(users, as_admin, "manager", ["user-admin"])
    manager = bearer(users.login("manager", PASSWORD).access_token)
    refused = rejected(_create_role, users, manager, "sneaky", "audit:read", "schema:write")
    assert refused == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_GRANTABLE")
    _create_role(users, manager, "log-reader-2", "audit:read")
    assert rejected(
        _update_role, users, manager, "log-reader-2", ["permissions"], permissions=["*"]
    ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_GRANTABLE")
    # A role carrying more than the manager holds is out of their reach altogether.
    _create_role(users, as_admin, "schema-writer", "schema:write")
    assert rejected(
        _update_role, users, manager, "schema-writer", ["description"], description="mine"
    ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_GRANTABLE")
    assert rejected(
        users.users.DeleteRole, users_pb.DeleteRoleRequest(name="schema-writer"), metadata=manager
    ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_GRANTABLE")
    # An editor (no users:write) may not manage roles at all.
    _create_user(users, as_admin, "an-editor", ["editor"])
    editor = bearer(users.login("an-editor", PASSWORD).access_token)
    assert rejected(_create_role, users, editor, "mine", "schema:read") == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_PERMISSION",
    )


def test_added_permissions_reach_tokens_at_refresh_removed_ones_end_sessions(users, as_admin):
    role = _create_role(users, as_admin, "growing", "schema:read")
    _create_user(users, as_admin, "grower", ["growing"])
    session = users.login("grower", PASSWORD)
    grown = _update_role(
        users,
        as_admin,
        "growing",
        ["permissions"],
        etag=role.etag,
        permissions=["schema:read", "audit:read"],
    )
    assert list(grown.permissions) == ["audit:read", "schema:read"] and grown.etag != role.etag
    assert _permissions(users, session.access_token) == ["schema:read"]  # until refreshed
    refreshed = users.auth.RefreshToken(
        auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token), timeout=10
    )
    assert _permissions(users, refreshed.access_token) == ["audit:read", "schema:read"]
    assert rejected(
        _update_role, users, as_admin, "growing", ["description"], etag=role.etag, description="x"
    ) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    before = last_seq(users.settings.database_url)
    _update_role(users, as_admin, "growing", ["permissions"], permissions=["schema:read"])
    assert rejected(
        users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=refreshed.access_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    (event,) = [
        r
        for r in outbox_rows(users.settings.database_url, after=before)
        if r.type.startswith("users.role")
    ]
    assert (event.type, event.subject, event.actor) == (
        "users.role.updated",
        "roles/growing",
        "admin",
    )
    assert (event.data["added"], event.data["removed"], event.data["ended_sessions"]) == (
        [],
        ["audit:read"],
        1,
    )
    assert event.data["client_address"] == "127.0.0.1"


def test_an_update_names_what_it_changes(users, as_admin):
    _create_role(users, as_admin, "masked", "schema:read")
    with pytest.raises(grpc.RpcError) as caught:
        _update_role(users, as_admin, "masked", ["name", "builtin"])
    assert violated_fields(caught.value) == ["update_mask"]
    with pytest.raises(grpc.RpcError) as caught:
        _update_role(users, as_admin, "masked", ["permissions"], permissions=["root"])
    assert violated_fields(caught.value) == ["role.permissions[0]"]


def test_a_role_in_use_is_not_deleted(users, as_admin):
    _create_role(users, as_admin, "short-lived", "schema:read")
    holder = _create_user(users, as_admin, "holder", ["short-lived"])
    refused = rejected(
        users.users.DeleteRole, users_pb.DeleteRoleRequest(name="short-lived"), metadata=as_admin
    )
    assert refused == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_IN_USE")
    users.users.SetUserRoles(
        users_pb.SetUserRolesRequest(user_id=holder.user_id, roles=[]),
        metadata=as_admin,
        timeout=10,
    )
    before = last_seq(users.settings.database_url)
    users.users.DeleteRole(
        users_pb.DeleteRoleRequest(name="short-lived"), metadata=as_admin, timeout=10
    )
    [event] = [
        r
        for r in outbox_rows(users.settings.database_url, after=before)
        if r.type.startswith("users.role")
    ]
    assert (event.type, event.data["role"]) == ("users.role.deleted", "short-lived")
    listed = users.users.ListRoles(users_pb.ListRolesRequest(), metadata=as_admin, timeout=10)
    assert "short-lived" not in {r.name for r in listed.roles}


def test_create_user_refuses_roles_set_on_the_user(users, as_admin):
    with pytest.raises(grpc.RpcError) as caught:
        users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="ambiguous", roles=["editor"]), password=PASSWORD
            ),
            metadata=as_admin,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["user.roles"]
    assert error_info(caught.value).reason == "INVALID_ARGUMENT"
