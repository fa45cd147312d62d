"""The token endpoint over native gRPC: a form in an HttpBody, RFC 6749's error codes."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.api import httpbody_pb2

from common.users_client import SERVICE_ACCOUNTS_FILE
from tests.support.errors import error_info
from tests.support.users import ADMIN_PASSWORD
from users.v1 import auth_service_pb2 as auth_pb

FORM = "application/x-www-form-urlencoded"


def _token(users, body: bytes, *, content_type: str = FORM, metadata=()):
    return users.auth.IssueToken(
        auth_pb.IssueTokenRequest(form=httpbody_pb2.HttpBody(content_type=content_type, data=body)),
        metadata=list(metadata),
        timeout=10,
    )


def _refused(users, body: bytes, **kwargs):
    with pytest.raises(grpc.RpcError) as caught:
        _token(users, body, **kwargs)
    return caught.value.code(), error_info(caught.value)


def test_a_password_grant_is_a_session(users):
    token = _token(users, f"grant_type=password&username=admin&password={ADMIN_PASSWORD}".encode())
    assert token.token_type == "Bearer" and token.refresh_token and token.expires_in == 300
    check = auth_pb.ValidateTokenRequest(token=token.access_token)
    assert users.auth.ValidateToken(check, timeout=10).username == "admin"


@pytest.mark.parametrize(
    ("body", "content_type", "code", "reason"),
    [
        (b"grant_type=password", "application/json", "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (b"grant_type=password&grant_type=password", FORM, "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (b"\xff\xfe", FORM, "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (b"username=admin", FORM, "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (b"grant_type=implicit", FORM, "INVALID_ARGUMENT", "UNSUPPORTED_GRANT_TYPE"),
        (b"grant_type=password&username=admin", FORM, "INVALID_ARGUMENT", "INVALID_REQUEST"),
        (b"grant_type=refresh_token&refresh_token=junk", FORM, "INVALID_ARGUMENT", "INVALID_GRANT"),
        (b"grant_type=client_credentials", FORM, "UNAUTHENTICATED", "INVALID_CLIENT"),
        (b"a=1&" * 20 + b"grant_type=password", FORM, "INVALID_ARGUMENT", "INVALID_REQUEST"),
    ],
)
def test_each_bad_request_has_its_rfc_error(users, body, content_type, code, reason):
    refused_code, info = _refused(users, body, content_type=content_type)
    assert (refused_code.name, info.reason) == (code, reason)


def test_a_wrong_password_is_an_invalid_grant_that_says_why(users):
    code, info = _refused(users, b"grant_type=password&username=admin&password=wrong+one")
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_GRANT")
    assert info.metadata["mesh_reason"] == "INVALID_CREDENTIALS"


def test_client_credentials_by_basic_authentication(users):
    secret = json.loads((users.settings.data_dir / SERVICE_ACCOUNTS_FILE).read_text())["svc-oms"]
    basic = base64.b64encode(f"svc-oms:{secret}".encode()).decode()
    token = _token(
        users, b"grant_type=client_credentials", metadata=[("authorization", f"Basic {basic}")]
    )
    assert token.access_token and token.refresh_token == ""
    wrong = base64.b64encode(b"svc-oms:not-it").decode()
    code, info = _refused(
        users, b"grant_type=client_credentials", metadata=[("authorization", f"Basic {wrong}")]
    )
    assert (code, info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CLIENT")
    code, info = _refused(
        users, b"grant_type=client_credentials", metadata=[("authorization", "Basic !!")]
    )
    assert info.reason == "INVALID_CLIENT"
