"""The password lifecycle over a real port: own change, admin reset, reset tokens, the rules."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from argon2 import extract_parameters

from tests.support.errors import error_info, violated_fields
from tests.support.outbox import outbox_rows
from tests.support.users import ADMIN_PASSWORD, bearer, rejected, running_users, users_settings
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

FIRST = "violet tugboat ossifies slowly"
SECOND = "amber glacier hums at noon"
THIRD = "seventeen quiet lanterns drift"


@pytest.fixture
def person(users, admin):
    """A fresh user with FIRST as password: (user, a live session of theirs)."""
    name = f"person-{uuid.uuid4().hex[:8]}"
    user = users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=name, email=f"{name}@example.org"),
            password=FIRST,
            roles=["viewer"],
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    return user, users.login(name, FIRST)


def _change(users, token, current, new):
    return users.auth.ChangePassword(
        auth_pb.ChangePasswordRequest(current_password=current, new_password=new),
        metadata=bearer(token),
        timeout=10,
    )


def _refusal(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value


def _validate(users, token):
    return users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10)


def test_changing_your_password_ends_every_session_and_opens_a_new_one(users, person):
    user, session = person
    other = users.login(user.username, FIRST)
    changed = _change(users, session.access_token, FIRST, SECOND)
    assert changed.required_action == auth_pb.REQUIRED_ACTION_UNSPECIFIED
    assert changed.refresh_token and changed.user.user_id == user.user_id
    assert _validate(users, changed.access_token).user_id == user.user_id
    for ended in (session.access_token, other.access_token):
        assert rejected(_validate, users, ended) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )
    assert rejected(users.login, user.username, FIRST)[1] == "INVALID_CREDENTIALS"
    assert users.login(user.username, SECOND).user.user_id == user.user_id


def test_each_refusal_of_a_new_password_has_its_reason_and_field(users, person):
    user, session = person
    cases = {
        "PASSWORD_TOO_SHORT": "short",
        "PASSWORD_TOO_GUESSABLE": f"{user.username}123",
        "PASSWORD_REUSED": FIRST,
    }
    for reason, new in cases.items():
        error = _refusal(_change, users, session.access_token, FIRST, new)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(error).reason == reason
        assert violated_fields(error) == ["new_password"]
    wrong = _refusal(_change, users, session.access_token, "not the password", SECOND)
    assert (wrong.code(), error_info(wrong).reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    # Nothing was changed by the refusals: the session and the password still hold.
    assert _validate(users, session.access_token).user_id == user.user_id


def test_the_last_passwords_cannot_come_back(users, person):
    _, session = person
    token = _change(users, session.access_token, FIRST, SECOND).access_token
    token = _change(users, token, SECOND, THIRD).access_token
    error = _refusal(_change, users, token, THIRD, FIRST)
    assert error_info(error).reason == "PASSWORD_REUSED"


def test_guessing_the_current_password_meets_the_login_lockout(users, person):
    user, session = person
    for _ in range(5):
        wrong = _refusal(_change, users, session.access_token, "not the password", SECOND)
        assert error_info(wrong).reason == "INVALID_CREDENTIALS"
    locked = _refusal(_change, users, session.access_token, FIRST, SECOND)
    assert error_info(locked).reason == "ACCOUNT_LOCKED"
    assert rejected(users.login, user.username, FIRST)[1] == "ACCOUNT_LOCKED"
    # Only this address: the owner elsewhere still logs in.
    elsewhere = users.auth.Login(
        auth_pb.LoginRequest(username=user.username, password=FIRST),
        metadata=[("x-forwarded-for", "198.51.100.7")],
        timeout=10,
    )
    assert elsewhere.user.user_id == user.user_id


def test_a_change_needs_a_token(users, person):
    assert rejected(
        users.auth.ChangePassword,
        auth_pb.ChangePasswordRequest(current_password=FIRST, new_password=SECOND),
        timeout=10,
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


def test_an_admin_reset_allows_only_the_change_at_the_next_login(users, admin, person):
    user, session = person
    as_admin = bearer(admin.access_token)
    reset = users.users.SetUserPassword(
        users_pb.SetUserPasswordRequest(user_id=user.user_id, password=SECOND),
        metadata=as_admin,
        timeout=10,
    )
    assert reset.password_change_required
    assert rejected(_validate, users, session.access_token)[1] == "TOKEN_REVOKED"

    answer = users.login(user.username, SECOND)
    assert answer.required_action == auth_pb.REQUIRED_ACTION_CHANGE_PASSWORD
    assert answer.refresh_token == "" and answer.refresh_expires_in == 0
    only_change = answer.access_token
    # The change-only token passes for no access token, anywhere.
    assert rejected(_validate, users, only_change)[1] == "TOKEN_TYPE_MISMATCH"
    assert rejected(
        users.users.GetUser,
        users_pb.GetUserRequest(user_id=user.user_id),
        metadata=bearer(only_change),
        timeout=10,
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_TYPE_MISMATCH")

    changed = _change(users, only_change, SECOND, THIRD)
    assert changed.required_action == auth_pb.REQUIRED_ACTION_UNSPECIFIED
    assert not changed.user.password_change_required
    assert users.login(user.username, THIRD).required_action == (
        auth_pb.REQUIRED_ACTION_UNSPECIFIED
    )
    # The change-only session ended with the change.
    assert rejected(_change, users, only_change, THIRD, FIRST)[1] == "TOKEN_REVOKED"


def _issue(users, admin, user_id):
    return users.users.IssuePasswordResetToken(
        users_pb.IssuePasswordResetTokenRequest(user_id=user_id),
        metadata=bearer(admin.access_token),
        timeout=10,
    )


def _reset(users, token, new):
    return users.auth.ResetPassword(
        auth_pb.ResetPasswordRequest(reset_token=token, new_password=new), timeout=10
    )


def test_a_reset_token_works_once_and_ends_every_session(users, admin, person):
    user, session = person
    issued = _issue(users, admin, user.user_id)
    assert len(issued.reset_token) >= 43 and issued.expire_time.seconds > 0
    weak = _refusal(_reset, users, issued.reset_token, "short")
    assert error_info(weak).reason == "PASSWORD_TOO_SHORT"
    _reset(users, issued.reset_token, SECOND)  # a refused password did not spend it
    assert rejected(_validate, users, session.access_token)[1] == "TOKEN_REVOKED"
    assert users.login(user.username, SECOND).user.user_id == user.user_id
    assert rejected(_reset, users, issued.reset_token, THIRD) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "RESET_TOKEN_INVALID",
    )


def test_a_new_reset_token_supersedes_the_last_and_old_ones_expire(users, admin, person):
    user, _ = person
    first = _issue(users, admin, user.user_id).reset_token
    second = _issue(users, admin, user.user_id).reset_token
    assert rejected(_reset, users, first, SECOND)[1] == "RESET_TOKEN_INVALID"
    engine = sa.create_engine(users.settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE password_reset_tokens SET expires_ns = 1"))
    engine.dispose()
    assert rejected(_reset, users, second, SECOND)[1] == "RESET_TOKEN_INVALID"
    assert rejected(_reset, users, "made-up", SECOND)[1] == "RESET_TOKEN_INVALID"


def test_no_password_or_reset_token_is_stored_or_recorded(users, admin, person):
    user, _ = person
    token = _issue(users, admin, user.user_id).reset_token
    _reset(users, token, SECOND)
    users.users.SetUserPassword(
        users_pb.SetUserPasswordRequest(user_id=user.user_id, password=THIRD),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    database = Path(users.settings.database_url.removeprefix("sqlite:///"))
    stored = b"".join(
        path.read_bytes() for path in database.parent.iterdir() if path.name.startswith("users")
    )
    for secret in (token, FIRST, SECOND, THIRD):
        assert secret.encode() not in stored
    types = {row.type for row in outbox_rows(users.settings.database_url, after=0)}
    assert {
        "users.user.password_changed",
        "users.user.password_reset",
        "users.user.password_reset_token_issued",
    } <= types


def test_only_admins_reset_passwords(users, person):
    user, session = person
    for call, request in (
        (
            users.users.SetUserPassword,
            users_pb.SetUserPasswordRequest(user_id=user.user_id, password=SECOND),
        ),
        (
            users.users.IssuePasswordResetToken,
            users_pb.IssuePasswordResetTokenRequest(user_id=user.user_id),
        ),
    ):
        assert rejected(call, request, metadata=bearer(session.access_token), timeout=10) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "MISSING_PERMISSION",
        )


def test_a_hash_of_older_parameters_is_upgraded_at_the_next_login(tmp_path):
    settings = users_settings(tmp_path)

    def stored_memory() -> int:
        engine = sa.create_engine(settings.database_url)
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT password_hash FROM users WHERE username = 'admin'")
            ).scalar_one()
        engine.dispose()
        return extract_parameters(stored).memory_cost

    with running_users(settings):
        pass
    assert stored_memory() == 64
    with running_users(dataclasses.replace(settings, password_hash_profile="owasp")) as users:
        users.login("admin", ADMIN_PASSWORD)
    assert stored_memory() == 19 * 1024


def test_a_new_user_s_password_meets_the_rules_too(users, admin):
    name = f"new-{uuid.uuid4().hex[:8]}"
    error = _refusal(
        lambda request: users.users.CreateUser(
            request, metadata=bearer(admin.access_token), timeout=10
        ),
        users_pb.CreateUserRequest(
            user=resources.User(username=name), password=f"{name}{name}", roles=["viewer"]
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error_info(error).reason, violated_fields(error)) == (
        "PASSWORD_TOO_GUESSABLE",
        ["password"],
    )
