"""The servicers in isolation (grpc_testing): protos in, domain calls, protos out."""

import grpc
import grpc_testing
import jwt
import pytest

from tests.support.users import ADMIN_PASSWORD, users_settings
from users.server import build_components
from users.servicer import AuthServicer, UserServicer
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import user_service_pb2 as users_pb

AUTH = auth_pb.DESCRIPTOR.services_by_name["AuthService"]
USERS = users_pb.DESCRIPTOR.services_by_name["UserService"]


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path))
    yield components
    components.close()


@pytest.fixture
def server(parts):
    return grpc_testing.server_from_dictionary(
        {
            AUTH: AuthServicer(parts.auth, parts.revocations),
            USERS: UserServicer(parts.directory),
        },
        grpc_testing.strict_real_time(),
    )


def _unary(server, service, method, request, metadata=()):
    rpc = server.invoke_unary_unary(service.methods_by_name[method], metadata, request, 5)
    response, _, code, _ = rpc.termination()
    return response, code


def _login(server):
    response, code = _unary(
        server, AUTH, "Login", auth_pb.LoginRequest(username="admin", password=ADMIN_PASSWORD)
    )
    assert code == grpc.StatusCode.OK
    return response


def test_login_fills_every_documented_field(server):
    response = _login(server)
    assert response.token_type == "Bearer"
    assert response.expires_in == 300 and response.refresh_expires_in == 3600
    assert response.user.username == "admin" and response.user.create_time.seconds > 0
    assert jwt.get_unverified_header(response.access_token)["typ"] == "at+jwt"


def test_validate_reads_the_request_field_then_the_bearer_header(server):
    token = _login(server).access_token
    by_field, code = _unary(
        server, AUTH, "ValidateToken", auth_pb.ValidateTokenRequest(token=token)
    )
    assert code == grpc.StatusCode.OK
    by_header, code = _unary(
        server,
        AUTH,
        "ValidateToken",
        auth_pb.ValidateTokenRequest(),
        metadata=(("authorization", f"Bearer {token}"),),
    )
    assert code == grpc.StatusCode.OK
    assert by_field == by_header
    assert by_field.valid and by_field.username == "admin" and list(by_field.roles) == ["admin"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert by_field.expires_at.seconds == claims["exp"]
    assert by_field.session_id == claims["sid"]


def test_refresh_returns_a_new_pair(server):
    login = _login(server)
    response, code = _unary(
        server, AUTH, "RefreshToken", auth_pb.RefreshTokenRequest(refresh_token=login.refresh_token)
    )
    assert code == grpc.StatusCode.OK
    assert response.refresh_token != login.refresh_token
    assert response.token_type == "Bearer" and response.expires_in == 300


def test_jwks_lists_the_signing_key_first_and_the_next_one(server):
    login = _login(server)
    response, _ = _unary(server, AUTH, "GetJwks", auth_pb.GetJwksRequest())
    kids = [k.kid for k in response.keys]
    assert len(kids) == 2
    assert kids[0] == jwt.get_unverified_header(login.access_token)["kid"]


def test_watch_revocations_streams_a_caught_up_batch(server, parts):
    login = _login(server)
    principal = parts.auth.validate(login.access_token)
    parts.auth.logout(principal)
    rpc = server.invoke_unary_stream(
        AUTH.methods_by_name["WatchRevocations"],
        (),
        auth_pb.WatchRevocationsRequest(after_sequence=0),
        5,
    )
    first = rpc.take_response()
    assert first.caught_up
    assert [(r.session_id, r.reason) for r in first.revocations] == [
        (principal.session_id, "logout")
    ]
    rpc.cancel()


def test_list_roles_and_users(server):
    roles, code = _unary(server, USERS, "ListRoles", users_pb.ListRolesRequest())
    assert code == grpc.StatusCode.OK
    assert [r.name for r in roles.roles] == ["admin", "auditor", "editor", "service", "viewer"]
    page, _ = _unary(server, USERS, "ListUsers", users_pb.ListUsersRequest(page_size=2))
    assert [u.username for u in page.users] == ["admin", "svc-audit"]
    assert page.next_page_token
