"""Key rotation: live tokens stay valid, new tokens use a kid verifiers already had."""

import grpc
import jwt

from tests.support.users import bearer, rejected
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb


def _kid(token):
    return jwt.get_unverified_header(token)["kid"]


def test_rotation_keeps_old_tokens_and_publishes_both_keys(users, admin):
    old_kid = _kid(admin.access_token)
    before = [k.kid for k in users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10).keys]
    rotated = users.auth.RotateSigningKey(
        auth_pb.RotateSigningKeyRequest(), metadata=bearer(admin.access_token), timeout=10
    )
    assert rotated.kid != old_kid
    # The new signing key was published before it signed anything; a next one is now.
    assert rotated.kid in before
    upcoming = rotated.published_kids[-1]
    assert upcoming not in before
    assert list(rotated.published_kids) == [rotated.kid, old_kid, upcoming]
    jwks = users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10)
    assert [k.kid for k in jwks.keys] == [rotated.kid, old_kid, upcoming]
    fresh = users.login()
    assert _kid(fresh.access_token) == _kid(fresh.refresh_token) == rotated.kid
    for token in (admin.access_token, fresh.access_token):
        assert users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10).valid
    # A refresh token signed by the old key is still good, and its successor uses the new key.
    refreshed = users.auth.RefreshToken(
        auth_pb.RefreshTokenRequest(refresh_token=admin.refresh_token), timeout=10
    )
    assert _kid(refreshed.access_token) == rotated.kid


def test_only_admins_rotate(users, admin):
    users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username="not-admin"),
            password="a long enough password",
            roles=["editor"],
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    editor = users.login("not-admin", "a long enough password")
    assert rejected(
        users.auth.RotateSigningKey,
        auth_pb.RotateSigningKeyRequest(),
        metadata=bearer(editor.access_token),
    ) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSION")
