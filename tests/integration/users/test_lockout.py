"""Brute-force lockout: concurrent attempts can never exceed the limit."""

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import sqlalchemy as sa

from tests.support.users import bearer, rejected, running_users, users_settings
from tests.support.waiting import eventually
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "the right password"


@pytest.fixture
def lockable(tmp_path):
    with running_users(users_settings(tmp_path, login_max_failures=5, lockout_seconds=2)) as users:
        admin = users.login()
        users.users.CreateUser(
            users_pb.CreateUserRequest(
                user=resources.User(username="target"), password=PASSWORD, roles=["viewer"]
            ),
            metadata=bearer(admin.access_token),
            timeout=10,
        )
        yield users


def _failures(users, username):
    engine = sa.create_engine(users.settings.database_url)
    with engine.connect() as conn:
        counted = conn.execute(
            sa.text("SELECT failures FROM login_attempts WHERE username = :u"), {"u": username}
        ).scalar_one()
        reasons = [
            json.loads(data)["reason"]
            for (data,) in conn.execute(
                sa.text("SELECT data FROM outbox WHERE type = 'users.auth.login_failed'")
            )
            if json.loads(data)["username"] == username
        ]
        locked = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE type = 'users.auth.locked_out'")
        ).scalar_one()
    engine.dispose()
    return counted, reasons, locked


@pytest.mark.parametrize("username", ["target", "no-such-user"])
def test_parallel_wrong_passwords_count_exactly_the_limit(lockable, username):
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(
            pool.map(lambda _: rejected(lockable.login, username, "wrong guess!"), range(20))
        )
    assert {code for code, _ in outcomes} == {grpc.StatusCode.UNAUTHENTICATED}
    reasons = [reason for _, reason in outcomes]
    # Exactly five attempts had their password checked; the other fifteen were refused unchecked.
    assert reasons.count("INVALID_CREDENTIALS") == 5
    assert reasons.count("ACCOUNT_LOCKED") == 15
    counted, logged, locked_events = _failures(lockable, username)
    assert counted == 5
    assert logged.count("invalid_credentials") == 5
    assert logged.count("account_locked") == 15
    assert locked_events == 1
    # Locked even for the right password (an unknown user has none; it stays locked alike).
    assert rejected(lockable.login, username, PASSWORD)[1] == "ACCOUNT_LOCKED"


def test_lock_expires_and_success_clears_the_count(lockable):
    for _ in range(5):
        assert rejected(lockable.login, "target", "wrong guess!")[1] == "INVALID_CREDENTIALS"
    assert rejected(lockable.login, "target", PASSWORD)[1] == "ACCOUNT_LOCKED"
    eventually(
        lambda: lockable.login("target", PASSWORD),
        timeout=10,
        interval=0.2,
        ignoring=(grpc.RpcError,),
        what="the lock expires",
    )
    assert _failures(lockable, "target")[0] == 0
    # After a success the full budget is available again.
    for _ in range(4):
        assert rejected(lockable.login, "target", "wrong guess!")[1] == "INVALID_CREDENTIALS"
    assert lockable.login("target", PASSWORD).user.username == "target"
