"""UsersClient against a real User Service: local verification and revocations within a second."""

import json
import time

import pytest

from common import errors
from common.config import RuntimeSettings
from common.users_client import ServiceTokenSource, UsersClient
from tests.support.users import bearer
from users.v1 import auth_service_pb2 as auth_pb


@pytest.fixture
def client(users):
    client = UsersClient(users.target)
    yield client
    client.close()


def _settings():
    return RuntimeSettings(
        max_workers=4,
        grace_seconds=0,
        log_level="INFO",
        issuer="ontology-mesh",
        audience="ontology-mesh",
    )


def test_verification_fails_closed_until_revocations_are_known(users, client):
    verifier = client.verifier(_settings())
    with pytest.raises(errors.Unavailable) as caught:
        verifier.verify_access(users.login().access_token)
    assert caught.value.reason == "REVOCATIONS_UNAVAILABLE"


def test_verifies_and_sees_a_revocation_within_a_second(users, client):
    client.start()
    assert client.revocations.wait_ready(5)
    verifier = client.verifier(_settings())
    session = users.login()
    assert verifier.verify_access(session.access_token).username == "admin"
    users.auth.Logout(auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10)
    revoked_at = time.monotonic()
    while True:
        try:
            verifier.verify_access(session.access_token)
        except errors.Unauthenticated as exc:
            assert exc.reason == "TOKEN_REVOKED"
            break
        assert time.monotonic() - revoked_at < 1.0, "revocation took more than a second"
        time.sleep(0.01)


def test_resumes_after_the_stream_breaks(users, client):
    client.start()
    assert client.revocations.wait_ready(5)
    verifier = client.verifier(_settings())
    # Break the stream under the watcher; it must reconnect and resume by sequence.
    client.revocations._call.cancel()
    session = users.login()
    users.auth.Logout(auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            verifier.verify_access(session.access_token)
        except errors.Unauthenticated as exc:
            assert exc.reason == "TOKEN_REVOKED"
            return
        time.sleep(0.02)
    raise AssertionError("the watcher never resumed")


def test_service_token_source_logs_in_with_the_first_start_file(users, client):
    source = ServiceTokenSource.from_env(
        client, default_username="svc-oms", data_dir=users.settings.data_dir
    )
    token = source.token()
    assert source.token() == token
    validated = users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10)
    assert validated.username == "svc-oms"
    assert {"audit:write", "users:read", "schema:read"} <= set(validated.permissions)
    source.invalidate()
    assert source.metadata()[0][1].startswith("Bearer ")


def test_service_token_source_refreshes_before_expiry(users, client):
    now = [1_000.0]
    source = ServiceTokenSource(
        client, "svc-audit", _service_password(users, "svc-audit"), clock=lambda: now[0]
    )
    first = source.token()
    now[0] += 280  # within the 30 s margin of the 300 s access token
    second = source.token()
    assert second != first
    # The refresh spent the first refresh token: the session rotated rather than a new login.
    first_sid = users.auth.ValidateToken(
        auth_pb.ValidateTokenRequest(token=first), timeout=10
    ).session_id
    second_sid = users.auth.ValidateToken(
        auth_pb.ValidateTokenRequest(token=second), timeout=10
    ).session_id
    assert first_sid == second_sid


def _service_password(users, name):
    return json.loads((users.settings.data_dir / "service-accounts.json").read_text())[name]
