"""UserService over a real port: reads, admin changes, and the guards around them."""

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.errors import violated_fields
from tests.support.outbox import last_seq, outbox_rows
from tests.support.users import bearer, rejected
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def as_admin(admin):
    return bearer(admin.access_token)


def _create(users, as_admin, username, roles=("viewer",), **fields):
    return users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=username, **fields), password=PASSWORD, roles=list(roles)
        ),
        metadata=as_admin,
        timeout=10,
    )


def test_create_and_get_user(users, as_admin):
    created = _create(users, as_admin, "carol", display_name="Carol", email="carol@example.com")
    assert created.user_id and created.etag
    assert (created.display_name, created.email, list(created.roles)) == (
        "Carol",
        "carol@example.com",
        ["viewer"],
    )
    fetched = users.users.GetUser(
        users_pb.GetUserRequest(user_id=created.user_id), metadata=as_admin, timeout=10
    )
    assert fetched == created


def test_create_reports_every_bad_field(users, as_admin):
    with pytest.raises(grpc.RpcError) as caught:
        users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="X", email="not-an-email"), password="short"
            ),
            metadata=as_admin,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["user.username", "password", "user.email"]


def test_duplicate_and_unknown_role(users, as_admin):
    _create(users, as_admin, "dupe")
    assert rejected(_create, users, as_admin, "dupe") == (
        grpc.StatusCode.ALREADY_EXISTS,
        "USER_EXISTS",
    )
    assert rejected(_create, users, as_admin, "ghost-role", roles=["wizard"])[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_self_or_users_read(users, as_admin):
    dave = _create(users, as_admin, "dave")
    erin = _create(users, as_admin, "erin")
    dave_session = bearer(users.login("dave", PASSWORD).access_token)
    me = users.users.GetUser(
        users_pb.GetUserRequest(user_id=dave.user_id), metadata=dave_session, timeout=10
    )
    assert me.username == "dave"
    permissions = users.users.GetUserPermissions(
        users_pb.GetUserPermissionsRequest(user_id=dave.user_id), metadata=dave_session, timeout=10
    )
    assert (list(permissions.roles), sorted(permissions.permissions)) == (
        ["viewer"],
        ["object:read", "schema:read"],
    )
    assert rejected(
        users.users.GetUser, users_pb.GetUserRequest(user_id=erin.user_id), metadata=dave_session
    ) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSION")
    assert rejected(users.users.ListUsers, users_pb.ListUsersRequest(), metadata=dave_session) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_PERMISSION",
    )
    assert rejected(
        users.users.GetUser, users_pb.GetUserRequest(user_id="missing"), metadata=as_admin
    ) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_list_users_pages_through_everyone(users, as_admin):
    for name in ("page-a", "page-b", "page-c"):
        _create(users, as_admin, name)
    seen, token = [], ""
    for _ in range(50):
        page = users.users.ListUsers(
            users_pb.ListUsersRequest(page_size=2, page_token=token), metadata=as_admin, timeout=10
        )
        assert len(page.users) <= 2
        seen.extend(u.username for u in page.users)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen)
    assert {"admin", "page-a", "page-b", "page-c", "svc-oms", "svc-audit"} <= set(seen)
    assert len(seen) == len(set(seen))
    assert rejected(
        users.users.ListUsers, users_pb.ListUsersRequest(page_token="%%%"), metadata=as_admin
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID")


def test_update_user_with_mask_and_etag(users, as_admin):
    frank = _create(users, as_admin, "frank", display_name="Frank", email="f@example.com")
    updated = users.users.UpdateUser(
        users_pb.UpdateUserRequest(
            user=resources.User(user_id=frank.user_id, display_name="Franklin", etag=frank.etag),
            update_mask=FieldMask(paths=["display_name"]),
        ),
        metadata=as_admin,
        timeout=10,
    )
    assert (updated.display_name, updated.email) == ("Franklin", "f@example.com")
    assert updated.etag != frank.etag
    stale = users_pb.UpdateUserRequest(
        user=resources.User(user_id=frank.user_id, email="new@example.com", etag=frank.etag),
        update_mask=FieldMask(paths=["email"]),
    )
    assert rejected(users.users.UpdateUser, stale, metadata=as_admin) == (
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    bad_mask = users_pb.UpdateUserRequest(
        user=resources.User(user_id=frank.user_id), update_mask=FieldMask(paths=["username"])
    )
    assert rejected(users.users.UpdateUser, bad_mask, metadata=as_admin)[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_roles_changes_and_escalation_guard(users, as_admin):
    gina = _create(users, as_admin, "gina", roles=["editor"])
    session = users.login("gina", PASSWORD)
    updated = users.users.SetUserRoles(
        users_pb.SetUserRolesRequest(user_id=gina.user_id, roles=["viewer", "auditor"]),
        metadata=as_admin,
        timeout=10,
    )
    assert list(updated.roles) == ["auditor", "viewer"]
    # Removing a role ends her sessions: no token keeps a withdrawn permission.
    assert (
        rejected(
            users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=session.access_token)
        )[1]
        == "TOKEN_REVOKED"
    )
    # Granting admin gives '*' at the next login.
    _create(users, as_admin, "helper", roles=["viewer"])
    helper = users.users.ListUsers(users_pb.ListUsersRequest(), metadata=as_admin, timeout=10)
    helper_id = next(u.user_id for u in helper.users if u.username == "helper")
    users.users.SetUserRoles(
        users_pb.SetUserRolesRequest(user_id=helper_id, roles=["admin"]),
        metadata=as_admin,
        timeout=10,
    )
    admin_helper = bearer(users.login("helper", PASSWORD).access_token)
    assert (
        users.users.GetUser(
            users_pb.GetUserRequest(user_id=gina.user_id), metadata=admin_helper, timeout=10
        ).username
        == "gina"
    )
    roles = users.users.ListRoles(users_pb.ListRolesRequest(), metadata=as_admin, timeout=10)
    by_name = {r.name: list(r.permissions) for r in roles.roles}
    assert by_name["admin"] == ["*"]
    assert {"audit:write", "users:read", "schema:read"} <= set(by_name["service"])
    assert set(by_name) == {"admin", "editor", "viewer", "auditor", "service"}


def test_editor_cannot_assign_roles(users, as_admin):
    target = _create(users, as_admin, "ivan")
    _create(users, as_admin, "judy", roles=["editor"])
    judy = bearer(users.login("judy", PASSWORD).access_token)
    assert rejected(
        users.users.SetUserRoles,
        users_pb.SetUserRolesRequest(user_id=target.user_id, roles=["admin"]),
        metadata=judy,
    ) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSION")


def test_last_admin_and_self_disable_are_refused(users, admin, as_admin):
    before = last_seq(users.settings.database_url)
    assert rejected(
        users.users.DisableUser,
        users_pb.DisableUserRequest(user_id=admin.user.user_id),
        metadata=as_admin,
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "CANNOT_DISABLE_SELF")
    listing = users.users.ListUsers(users_pb.ListUsersRequest(), metadata=as_admin, timeout=10)
    for user in listing.users:
        if "admin" in user.roles and user.user_id != admin.user.user_id:
            users.users.DisableUser(
                users_pb.DisableUserRequest(user_id=user.user_id), metadata=as_admin, timeout=10
            )
    assert rejected(
        users.users.SetUserRoles,
        users_pb.SetUserRolesRequest(user_id=admin.user.user_id, roles=["viewer"]),
        metadata=as_admin,
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")
    refusals = [
        (row.subject, row.data["action"], row.data["reason"])
        for row in outbox_rows(users.settings.database_url, after=before)
        if row.type == "users.user.change_refused"
    ]
    subject = f"users/{admin.user.user_id}"
    assert refusals == [
        (subject, "disable", "CANNOT_DISABLE_SELF"),
        (subject, "set_roles", "LAST_ADMIN"),
    ]
