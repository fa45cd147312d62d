"""Token introspection (RFC 7662) over native gRPC: who may ask, and what an answer holds."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.api import httpbody_pb2

from common.users_client import SERVICE_ACCOUNTS_FILE
from tests.support.errors import error_info
from tests.support.outbox import last_seq, outbox_rows
from tests.support.users import bearer
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def basic(users) -> list[tuple[str, str]]:
    """HTTP Basic metadata of the service account svc-oms, which holds tokens:introspect."""
    secret = json.loads((users.settings.data_dir / SERVICE_ACCOUNTS_FILE).read_text())["svc-oms"]
    encoded = base64.b64encode(f"svc-oms:{secret}".encode()).decode()
    return [("authorization", f"Basic {encoded}")]


def _introspect(users, body: str, metadata=()) -> auth_pb.IntrospectTokenResponse:
    return users.auth.IntrospectToken(
        auth_pb.IntrospectTokenRequest(
            form=httpbody_pb2.HttpBody(content_type=FORM, data=body.encode())
        ),
        metadata=list(metadata),
        timeout=10,
    )


def _refused(users, body: str, metadata=()) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        _introspect(users, body, metadata)
    return caught.value.code(), error_info(caught.value).reason


def test_an_active_token_is_described(users, admin, basic):
    before = last_seq(users.settings.database_url)
    found = _introspect(users, f"token={admin.access_token}&token_type_hint=access_token", basic)
    assert found.active
    assert (found.username, found.sub, found.token_type) == ("admin", admin.user.user_id, "Bearer")
    assert (found.iss, found.aud, found.scope) == ("ontology-mesh", "ontology-mesh", "*")
    assert found.iat == found.nbf and found.exp - found.iat == 300 and found.jti
    # The client's password was checked, but it opened no session and recorded nothing.
    assert outbox_rows(users.settings.database_url, after=before) == []


def test_a_service_token_may_introspect_too(users, admin):
    service = bearer(users.service_login().access_token)
    assert _introspect(users, f"token={admin.access_token}", service).active


def test_what_is_no_active_access_token_is_inactive_and_nothing_more(users, basic, signer):
    foreign = signer.mint()  # well formed, signed by a key this mesh never published
    expired = signer.mint(ttl=-60)
    for token in ("garbage", "a.b.c", foreign, expired):
        found = _introspect(users, f"token={token}", basic)
        assert found == auth_pb.IntrospectTokenResponse(active=False)
        assert not found.HasField("scope") and not found.HasField("exp")


def test_a_request_without_a_token_is_invalid(users, basic):
    assert _refused(users, "token_type_hint=access_token", basic) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )


def test_refresh_and_logged_out_tokens_are_inactive(users, basic):
    session = users.login()
    assert not _introspect(users, f"token={session.refresh_token}", basic).active
    assert _introspect(users, f"token={session.access_token}", basic).active
    users.auth.Logout(auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10)
    assert _introspect(users, f"token={session.access_token}", basic) == (
        auth_pb.IntrospectTokenResponse(active=False)
    )


def test_the_caller_must_be_a_client_holding_the_permission(users, admin):
    token = f"token={admin.access_token}"
    assert _refused(users, token) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CLIENT")
    wrong = base64.b64encode(b"svc-oms:not-it").decode()
    assert _refused(users, token, [("authorization", f"Basic {wrong}")]) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CLIENT",
    )
    assert _refused(users, token, bearer("not-a-token")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CLIENT",
    )
    users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username="prober"),
            password="a long enough password",
            roles=["viewer"],
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    posted = f"{token}&client_id=prober&client_secret=a+long+enough+password"
    assert _refused(users, posted) == (grpc.StatusCode.PERMISSION_DENIED, "UNAUTHORIZED_CLIENT")
    viewer = bearer(users.login("prober", "a long enough password").access_token)
    assert _refused(users, token, viewer) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "UNAUTHORIZED_CLIENT",
    )
