"""The servicers in isolation: protos in, domain calls, protos out.

They are coroutines, called here directly on a loop of the test's own (the interceptor that
authenticates callers is tested with the server factory). grpcio-testing drives only
synchronous servicers, so it has no place here any more.
"""

import asyncio

import jwt
import pytest

from tests.support.users import ADMIN_PASSWORD, users_settings
from users.server import build_components
from users.servicers import AuthServicer, UserServicer
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import user_service_pb2 as users_pb


class _Context:
    def __init__(self, metadata=()):
        self._metadata = tuple(metadata)

    def invocation_metadata(self):
        return self._metadata


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path))
    yield components
    components.close()


class _Servicers:
    def __init__(self, parts):
        self.auth = AuthServicer(
            parts.auth,
            parts.verifier,
            parts.revocations,
            parts.blocking,
            issuer="ontology-mesh",
            public_url="http://127.0.0.1:8080",
        )
        self.users = UserServicer(parts.directory, parts.blocking)

    def call(self, method, request, metadata=()):
        service = self.auth if hasattr(self.auth, method) else self.users
        return asyncio.run(getattr(service, method)(request, _Context(metadata)))


@pytest.fixture
def server(parts):
    return _Servicers(parts)


def _unary(server, method, request, metadata=()):
    return server.call(method, request, metadata)


def _login(server):
    return _unary(server, "Login", auth_pb.LoginRequest(username="admin", password=ADMIN_PASSWORD))


def test_login_fills_every_documented_field(server):
    response = _login(server)
    assert response.token_type == "Bearer"
    assert response.expires_in == 300 and response.refresh_expires_in == 3600
    assert response.user.username == "admin" and response.user.create_time.seconds > 0
    assert jwt.get_unverified_header(response.access_token)["typ"] == "at+jwt"


def test_validate_reads_the_request_field_then_the_bearer_header(server):
    token = _login(server).access_token
    by_field = _unary(server, "ValidateToken", auth_pb.ValidateTokenRequest(token=token))
    by_header = _unary(
        server,
        "ValidateToken",
        auth_pb.ValidateTokenRequest(),
        metadata=(("authorization", f"Bearer {token}"),),
    )
    assert by_field == by_header
    assert by_field.valid and by_field.username == "admin" and list(by_field.roles) == ["admin"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert by_field.expires_at.seconds == claims["exp"]
    assert by_field.session_id == claims["sid"]


def test_refresh_returns_a_new_pair(server):
    login = _login(server)
    response = _unary(
        server, "RefreshToken", auth_pb.RefreshTokenRequest(refresh_token=login.refresh_token)
    )
    assert response.refresh_token != login.refresh_token
    assert response.token_type == "Bearer" and response.expires_in == 300


def test_jwks_lists_the_signing_key_first_and_the_next_one(server):
    login = _login(server)
    response = _unary(server, "GetJwks", auth_pb.GetJwksRequest())
    kids = [k.kid for k in response.keys]
    assert len(kids) == 2
    assert kids[0] == jwt.get_unverified_header(login.access_token)["kid"]


def test_watch_revocations_streams_a_caught_up_batch(server, parts):
    login = _login(server)
    principal = parts.verifier.verify_access(login.access_token)
    parts.auth.logout(principal)

    async def first_response():
        stream = server.auth.WatchRevocations(
            auth_pb.WatchRevocationsRequest(after_sequence=0), _Context()
        )
        try:
            return await anext(stream)
        finally:
            await stream.aclose()

    first = asyncio.run(first_response())
    assert first.caught_up
    assert [(r.session_id, r.reason) for r in first.revocations] == [
        (principal.session_id, "logout")
    ]


def test_list_roles_and_users(server):
    roles = _unary(server, "ListRoles", users_pb.ListRolesRequest())
    assert [r.name for r in roles.roles] == ["admin", "auditor", "editor", "service", "viewer"]
    page = _unary(server, "ListUsers", users_pb.ListUsersRequest(page_size=2))
    assert [u.username for u in page.users] == ["admin", "svc-audit"]
    assert page.next_page_token
