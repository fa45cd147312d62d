"""A restart on the same data folder keeps users, keys and revocations."""

import os
import stat

import grpc

from tests.support.users import bearer, rejected, running_users, users_settings
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb


def test_restart_keeps_users_keys_and_revocations(tmp_path):
    settings = users_settings(tmp_path)
    with running_users(settings) as users:
        admin = users.login()
        users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="survivor"),
                password="survives restarts",
                roles=["viewer"],
            ),
            metadata=bearer(admin.access_token),
            timeout=10,
        )
        gone = users.login("survivor", "survives restarts")
        users.auth.Logout(auth_pb.LogoutRequest(), metadata=bearer(gone.access_token), timeout=10)
        kids = [k.kid for k in users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10).keys]
    with running_users(settings) as users:
        assert [
            k.kid for k in users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10).keys
        ] == kids
        # The token from before the restart verifies: same key.
        assert (
            users.auth.ValidateToken(
                auth_pb.ValidateTokenRequest(token=admin.access_token), timeout=10
            ).username
            == "admin"
        )
        assert rejected(
            users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=gone.access_token)
        ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
        assert (
            rejected(
                users.auth.RefreshToken,
                auth_pb.RefreshTokenRequest(refresh_token=gone.refresh_token),
            )[1]
            == "TOKEN_REVOKED"
        )
        assert users.login("survivor", "survives restarts").user.username == "survivor"


def test_secrets_on_disk_are_private(tmp_path):
    with running_users(users_settings(tmp_path, admin_password=None)):
        pass
    for path in [tmp_path / "admin-password", tmp_path / "service-accounts.json"]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert not tmp_path.joinpath("keys").exists()  # the signing keys are sealed in the database
    password = (tmp_path / "admin-password").read_text().strip()
    with running_users(users_settings(tmp_path, admin_password=None)) as users:
        # The generated password logs in, and a second start did not replace it.
        assert users.login("admin", password).user.username == "admin"
        assert (tmp_path / "admin-password").read_text().strip() == password
