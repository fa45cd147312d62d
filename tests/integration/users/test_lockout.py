"""Brute-force lockout per (username, client address).

Concurrent attempts never exceed the limit, a lock holds only the address that earned it,
locks grow until one is hard, and an admin ends them.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import sqlalchemy as sa

from tests.support.errors import error_info
from tests.support.outbox import last_seq, outbox_rows
from tests.support.users import bearer, rejected, running_users, users_settings
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "the right password"
ATTACKER = [("x-forwarded-for", "203.0.113.9")]
OWNER = [("x-forwarded-for", "198.51.100.7")]
"""Two clients behind the gateway: the peer (loopback) is a trusted proxy, so its last
``x-forwarded-for`` entry is the client address."""


@pytest.fixture
def lockable(tmp_path):
    with running_users(users_settings(tmp_path, login_max_failures=5, lockout_seconds=2)) as users:
        _target(users)
        yield users


def _target(users):
    """Create the user ``target``; an admin's session."""
    admin = users.login()
    users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username="target"), password=PASSWORD, roles=["viewer"]
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    return admin


def _failures(users, username):
    engine = sa.create_engine(users.settings.database_url)
    with engine.connect() as conn:
        counted = conn.execute(
            sa.text("SELECT failures FROM login_attempts WHERE username = :u"), {"u": username}
        ).scalar()
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
    assert _failures(lockable, "target")[0] is None  # a success forgets its address's failures
    # After a success the full budget is available again.
    for _ in range(4):
        assert rejected(lockable.login, "target", "wrong guess!")[1] == "INVALID_CREDENTIALS"
    assert lockable.login("target", PASSWORD).user.username == "target"


def _login(users, metadata, password):
    return users.auth.Login(
        auth_pb.LoginRequest(username="target", password=password), metadata=metadata, timeout=10
    )


def _refusal(users, metadata, password):
    with pytest.raises(grpc.RpcError) as caught:
        _login(users, metadata, password)
    return caught.value


def test_a_lock_holds_only_the_address_that_earned_it(lockable):
    for _ in range(5):
        assert error_info(_refusal(lockable, ATTACKER, "wrong guess!")).reason == (
            "INVALID_CREDENTIALS"
        )
    # The right password from the locked address is refused unchecked, like any other.
    locked = error_info(_refusal(lockable, ATTACKER, PASSWORD))
    assert locked.reason == "ACCOUNT_LOCKED"
    assert 1 <= int(locked.metadata["retry_after_seconds"]) <= 2
    assert _login(lockable, OWNER, PASSWORD).user.username == "target"
    # The owner's success forgets nothing of the attacker's lock.
    assert error_info(_refusal(lockable, ATTACKER, PASSWORD)).reason == "ACCOUNT_LOCKED"


@pytest.fixture
def progressive(tmp_path):
    settings = users_settings(tmp_path, login_max_failures=2, lockout_seconds=1, login_max_locks=3)
    with running_users(settings) as users:
        yield users, _target(users)


def _fail_until_locked(users):
    """Two wrong guesses from the attacker; the ErrorInfo of the next, refused attempt."""
    for _ in range(2):
        assert error_info(_refusal(users, ATTACKER, "wrong guess!")).reason == (
            "INVALID_CREDENTIALS"
        )
    return error_info(_refusal(users, ATTACKER, PASSWORD))


def _lock_over(users):
    def over():
        try:
            _login(users, ATTACKER, "wrong guess!")
        except grpc.RpcError as error:
            return error_info(error).reason == "INVALID_CREDENTIALS"
        raise AssertionError("a wrong password was let in")

    # The probe is a wrong guess itself: it counts as the first failure of the next round.
    eventually(over, timeout=10, interval=0.2, what="the lock ends")


def test_locks_grow_until_one_is_hard_and_an_admin_ends_it(progressive):
    users, admin = progressive
    seq = last_seq(users.settings.database_url)
    assert _fail_until_locked(users).metadata["retry_after_seconds"] == "1"
    _lock_over(users)
    assert error_info(_refusal(users, ATTACKER, "wrong guess!")).reason == "INVALID_CREDENTIALS"
    second = error_info(_refusal(users, ATTACKER, PASSWORD))
    assert second.reason == "ACCOUNT_LOCKED" and second.metadata["retry_after_seconds"] == "2"
    _lock_over(users)
    assert error_info(_refusal(users, ATTACKER, "wrong guess!")).reason == "INVALID_CREDENTIALS"
    hard = error_info(_refusal(users, ATTACKER, PASSWORD))
    assert hard.reason == "ACCOUNT_LOCKED" and hard.metadata["hard_lock"] == "true"
    assert "retry_after_seconds" not in hard.metadata
    locks = [
        r
        for r in outbox_rows(users.settings.database_url, after=seq)
        if r.type == ("users.auth.locked_out")
    ]
    assert [(r.data["lock"], r.data["hard"], r.data["locked_seconds"]) for r in locks] == [
        (1, False, 1),
        (2, False, 2),
        (3, True, None),
    ]
    assert {r.data["client_address"] for r in locks} == {"203.0.113.9"}

    (target,) = [
        u
        for u in users.users.ListUsers(
            users_pb.ListUsersRequest(), metadata=bearer(admin.access_token), timeout=10
        ).users
        if u.username == "target"
    ]
    before = last_seq(users.settings.database_url)
    users.users.UnlockUser(
        users_pb.UnlockUserRequest(user_id=target.user_id),
        metadata=bearer(admin.access_token) + OWNER,
        timeout=10,
    )
    (unlocked,) = outbox_rows(users.settings.database_url, after=before)
    assert (unlocked.type, unlocked.actor, unlocked.subject) == (
        "users.auth.unlocked",
        "admin",
        f"users/{target.user_id}",
    )
    assert unlocked.data == {
        "username": "target",
        "client_addresses": ["203.0.113.9"],
        "client_address": "198.51.100.7",
    }
    assert _login(users, ATTACKER, PASSWORD).user.username == "target"


def test_only_user_admins_unlock(progressive):
    users, _ = progressive
    session = users.login("target", PASSWORD)
    assert rejected(
        users.users.UnlockUser,
        users_pb.UnlockUserRequest(user_id=session.user.user_id),
        metadata=bearer(session.access_token),
        timeout=10,
    ) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSION")
