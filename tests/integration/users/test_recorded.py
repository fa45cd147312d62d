"""Every change the User Service makes, and every call it refuses its caller, is in its outbox.

Each event names its actor and the client address: the gRPC peer, or the last
``x-forwarded-for`` entry when the peer is a trusted proxy (the gateway).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.mfa import totp_code
from tests.support.outbox import Row, last_seq, outbox_rows
from tests.support.users import ADMIN_PASSWORD, RunningUsers, bearer, running_users, users_settings
from tests.support.waiting import eventually
from users.servicers import AUTH_SERVICE, EVENTS, USER_SERVICE
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "a long enough password"
NEW_PASSWORD = "another long enough password"
TEMPORARY_PASSWORD = "a temporary password for now"
LAST_PASSWORD = "the last password of the lot"
WINDOW = 2.0
"""Longer than a flood of 30 calls takes on a busy machine, so that no window closes mid-flood."""
FORWARDED = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")]
"""What Envoy sends on: a client's own entry, then the address Envoy accepted."""


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUsers]:
    settings = users_settings(tmp_path_factory.mktemp("users"))
    runtime = dataclasses.replace(settings.runtime, denial_window_seconds=WINDOW)
    with running_users(dataclasses.replace(settings, runtime=runtime)) as running:
        yield running


def _rows(users: RunningUsers, after: int) -> list[Row]:
    return outbox_rows(users.settings.database_url, after=after)


def _emitted(users: RunningUsers, call: Callable[[], Any]) -> list[Row]:
    before = last_seq(users.settings.database_url)
    call()
    return _rows(users, before)


def _user(users: RunningUsers, admin: list[tuple[str, str]], name: str, roles: list[str]) -> Any:
    return users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=name), password=PASSWORD, roles=roles
        ),
        metadata=admin,
        timeout=10,
    )


def test_each_mutating_rpc_emits_the_events_its_mapping_declares(users: RunningUsers) -> None:
    admin = bearer(users.login().access_token)
    created: list[Any] = []
    sessions: list[auth_pb.LoginResponse] = []
    tokens: list[str] = []
    secrets: list[str] = []

    def create() -> None:
        created.append(_user(users, admin, "declared", ["viewer"]))

    def login() -> None:
        sessions.append(users.login("declared", PASSWORD))

    calls: list[tuple[str, str, Callable[[], Any]]] = [
        (USER_SERVICE, "CreateUser", create),
        (
            USER_SERVICE,
            "UpdateUser",
            lambda: users.users.UpdateUser(
                users_pb.UpdateUserRequest(
                    user=resources.User(user_id=created[0].user_id, display_name="D"),
                    update_mask=FieldMask(paths=["display_name"]),
                ),
                metadata=admin,
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "SetUserRoles",
            lambda: users.users.SetUserRoles(
                users_pb.SetUserRolesRequest(user_id=created[0].user_id, roles=["editor"]),
                metadata=admin,
                timeout=10,
            ),
        ),
        (AUTH_SERVICE, "Login", login),
        (
            AUTH_SERVICE,
            "RefreshToken",
            lambda: users.auth.RefreshToken(
                auth_pb.RefreshTokenRequest(refresh_token=sessions[0].refresh_token), timeout=10
            ),
        ),
        (
            AUTH_SERVICE,
            "Logout",
            lambda: users.auth.Logout(
                auth_pb.LogoutRequest(), metadata=bearer(sessions[0].access_token), timeout=10
            ),
        ),
        (
            USER_SERVICE,
            "DisableUser",
            lambda: users.users.DisableUser(
                users_pb.DisableUserRequest(user_id=created[0].user_id), metadata=admin, timeout=10
            ),
        ),
        (
            USER_SERVICE,
            "EnableUser",
            lambda: users.users.EnableUser(
                users_pb.EnableUserRequest(user_id=created[0].user_id), metadata=admin, timeout=10
            ),
        ),
        (
            AUTH_SERVICE,
            "IssueToken",
            lambda: users.auth.IssueToken(
                auth_pb.IssueTokenRequest(
                    form=httpbody_pb2.HttpBody(
                        content_type="application/x-www-form-urlencoded",
                        data=f"grant_type=password&username=admin&password={ADMIN_PASSWORD}".encode(),
                    )
                ),
                timeout=10,
            ),
        ),
        (AUTH_SERVICE, "Login", login),
        (
            AUTH_SERVICE,
            "DeleteSession",
            lambda: users.auth.DeleteSession(
                auth_pb.DeleteSessionRequest(
                    user_id=created[0].user_id,
                    session_id=users.auth.ValidateToken(
                        auth_pb.ValidateTokenRequest(token=sessions[-1].access_token), timeout=10
                    ).session_id,
                ),
                metadata=admin,
                timeout=10,
            ),
        ),
        (AUTH_SERVICE, "Login", login),
        (
            AUTH_SERVICE,
            "ChangePassword",
            lambda: users.auth.ChangePassword(
                auth_pb.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
                metadata=bearer(sessions[-1].access_token),
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "SetUserPassword",
            lambda: users.users.SetUserPassword(
                users_pb.SetUserPasswordRequest(
                    user_id=created[0].user_id, password=TEMPORARY_PASSWORD
                ),
                metadata=admin,
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "IssuePasswordResetToken",
            lambda: tokens.append(
                users.users.IssuePasswordResetToken(
                    users_pb.IssuePasswordResetTokenRequest(user_id=created[0].user_id),
                    metadata=admin,
                    timeout=10,
                ).reset_token
            ),
        ),
        (
            AUTH_SERVICE,
            "ResetPassword",
            lambda: users.auth.ResetPassword(
                auth_pb.ResetPasswordRequest(reset_token=tokens[0], new_password=LAST_PASSWORD),
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "UnlockUser",
            lambda: users.users.UnlockUser(
                users_pb.UnlockUserRequest(user_id=created[0].user_id), metadata=admin, timeout=10
            ),
        ),
        (
            USER_SERVICE,
            "CreateRole",
            lambda: users.users.CreateRole(
                users_pb.CreateRoleRequest(
                    role=resources.Role(name="recorded", permissions=["schema:read"])
                ),
                metadata=admin,
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "UpdateRole",
            lambda: users.users.UpdateRole(
                users_pb.UpdateRoleRequest(
                    role=resources.Role(name="recorded", description="changed"),
                    update_mask=FieldMask(paths=["description"]),
                ),
                metadata=admin,
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "DeleteRole",
            lambda: users.users.DeleteRole(
                users_pb.DeleteRoleRequest(name="recorded"), metadata=admin, timeout=10
            ),
        ),
        (
            AUTH_SERVICE,
            "RotateSigningKey",
            lambda: users.auth.RotateSigningKey(
                auth_pb.RotateSigningKeyRequest(), metadata=admin, timeout=10
            ),
        ),
        (AUTH_SERVICE, "Login", lambda: sessions.append(users.login("declared", LAST_PASSWORD))),
        (
            AUTH_SERVICE,
            "EnrollTotp",
            lambda: secrets.append(
                users.auth.EnrollTotp(
                    auth_pb.EnrollTotpRequest(),
                    metadata=bearer(sessions[-1].access_token),
                    timeout=10,
                ).secret
            ),
        ),
        (
            AUTH_SERVICE,
            "ConfirmTotp",
            lambda: users.auth.ConfirmTotp(
                auth_pb.ConfirmTotpRequest(totp_code=totp_code(secrets[0])),
                metadata=bearer(sessions[-1].access_token),
                timeout=10,
            ),
        ),
        (AUTH_SERVICE, "Login", lambda: sessions.append(users.login("declared", LAST_PASSWORD))),
        (
            AUTH_SERVICE,
            "VerifySecondFactor",
            lambda: users.auth.VerifySecondFactor(
                auth_pb.VerifySecondFactorRequest(totp_code=totp_code(secrets[0], steps_ahead=1)),
                metadata=bearer(sessions[-1].access_token),
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "ResetUserMfa",
            lambda: users.users.ResetUserMfa(
                users_pb.ResetUserMfaRequest(user_id=created[0].user_id),
                metadata=admin,
                timeout=10,
            ),
        ),
        (
            USER_SERVICE,
            "SetRoleMfaRequired",
            lambda: users.users.SetRoleMfaRequired(
                users_pb.SetRoleMfaRequiredRequest(name="auditor", mfa_required=False),
                metadata=admin,
                timeout=10,
            ),
        ),
    ]
    for service, name, call in calls:
        method = f"/{service}/{name}"
        rows = _emitted(users, call)
        assert rows, f"{name} emitted nothing"
        assert {r.type for r in rows} <= set(EVENTS[method]), name
        assert {r.data["client_address"] for r in rows} == {"127.0.0.1"}, name


def test_a_key_rotation_names_the_keys_and_who_rotated(users: RunningUsers) -> None:
    admin = bearer(users.login().access_token)
    before = users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10).keys[0].kid
    seq = last_seq(users.settings.database_url)
    rotated = users.auth.RotateSigningKey(
        auth_pb.RotateSigningKeyRequest(), metadata=admin + FORWARDED, timeout=10
    )
    (row,) = _rows(users, seq)
    assert (row.type, row.subject, row.actor) == (
        "users.auth.signing_key_rotated",
        f"signingKeys/{rotated.kid}",
        "admin",
    )
    assert row.data == {
        "kid": rotated.kid,
        "previous_kid": before,
        "published_kids": list(rotated.published_kids),
        "client_address": "198.51.100.7",
    }


def test_a_refused_admin_call_is_recorded_with_its_caller(users: RunningUsers) -> None:
    admin = bearer(users.login().access_token)
    _user(users, admin, "viewer-only", ["viewer"])
    viewer = bearer(users.login("viewer-only", PASSWORD).access_token)
    seq = last_seq(users.settings.database_url)
    for call, request in (
        (users.auth.RotateSigningKey, auth_pb.RotateSigningKeyRequest()),
        (
            users.users.CreateUser,
            users_pb.CreateUserRequest(user=resources.User(username="nobody"), password=PASSWORD),
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call(request, metadata=viewer + FORWARDED, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    rows = _rows(users, seq)
    assert [(r.type, r.subject, r.actor) for r in rows] == [
        ("users.call.denied", f"rpcs/{AUTH_SERVICE}/RotateSigningKey", "viewer-only"),
        ("users.call.denied", f"rpcs/{USER_SERVICE}/CreateUser", "viewer-only"),
    ]
    assert rows[0].data == {
        "method": f"/{AUTH_SERVICE}/RotateSigningKey",
        "code": "PERMISSION_DENIED",
        "reason": "MISSING_PERMISSION",
        "count": 1,
        "first_time": rows[0].data["first_time"],
        "client_address": "198.51.100.7",
    }


def test_a_flood_of_refused_calls_costs_two_events(users: RunningUsers) -> None:
    seq = last_seq(users.settings.database_url)
    request = users_pb.DisableUserRequest(user_id="anyone")
    for _ in range(30):
        with pytest.raises(grpc.RpcError) as caught:
            users.users.DisableUser(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    rows = eventually(lambda: [r for r in _rows(users, seq) if r.data["count"] > 1])
    denied = _rows(users, seq)
    assert [(r.type, r.actor, r.data["count"]) for r in denied] == [
        ("users.call.denied", "", 1),
        ("users.call.denied", "", 29),
    ]
    assert rows[0].data["reason"] == "TOKEN_MISSING"


def test_existing_events_carry_the_client_address_too(users: RunningUsers) -> None:
    rows = _emitted(
        users,
        lambda: users.auth.Login(
            auth_pb.LoginRequest(username="admin", password=ADMIN_PASSWORD),
            metadata=FORWARDED,
            timeout=10,
        ),
    )
    assert [(r.type, r.data["client_address"]) for r in rows] == [
        ("users.auth.login_succeeded", "198.51.100.7")
    ]


def test_a_peer_that_is_no_trusted_proxy_is_its_own_address(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = users_settings(tmp_path_factory.mktemp("untrusting"))
    runtime = dataclasses.replace(settings.runtime, trusted_proxies=())
    with running_users(dataclasses.replace(settings, runtime=runtime)) as running:
        seq = last_seq(running.settings.database_url)
        with pytest.raises(grpc.RpcError):
            running.auth.Login(
                auth_pb.LoginRequest(username="admin", password="wrong password"),
                metadata=FORWARDED,
                timeout=10,
            )
        rows = _rows(running, seq)
    assert [(r.type, r.data["client_address"]) for r in rows] == [
        ("users.auth.login_failed", "127.0.0.1")
    ]
