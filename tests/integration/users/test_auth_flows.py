"""Login, validation, refresh rotation with reuse detection, logout: over a real port."""

import json

import grpc
import jwt
import pytest
import sqlalchemy as sa

from common import times
from tests.support.errors import violated_fields
from tests.support.users import (
    ADMIN_PASSWORD,
    bearer,
    refresh_race,
    rejected,
    running_users,
    users_settings,
)
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb


def _create(users, admin, username, roles=("viewer",), password="correct horse battery"):
    return users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=username), password=password, roles=list(roles)
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )


def _validate(users, token):
    return users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10)


def _outbox_types(users):
    engine = sa.create_engine(users.settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type, data FROM outbox ORDER BY seq")).all()
    engine.dispose()
    return [(row.type, json.loads(row.data)) for row in rows]


def test_login_returns_the_documented_pair(users):
    response = users.login()
    assert response.token_type == "Bearer"
    assert response.expires_in == 300
    assert response.refresh_expires_in == 3600
    assert response.user.username == "admin"
    assert list(response.user.roles) == ["admin"]
    access = jwt.get_unverified_header(response.access_token)
    refresh = jwt.get_unverified_header(response.refresh_token)
    assert (access["alg"], access["typ"]) == ("ES256", "at+jwt")
    assert (refresh["alg"], refresh["typ"]) == ("ES256", "rt+jwt")
    claims = jwt.decode(response.access_token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "roles"} <= set(claims)
    assert claims["sub"] == response.user.user_id


def test_wrong_password_and_unknown_user_answer_alike(users):
    wrong = rejected(users.login, "admin", "not the password")
    unknown = rejected(users.login, "nobody-here", "not the password")
    assert wrong == unknown == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


def test_login_validates_input(users):
    with pytest.raises(grpc.RpcError) as caught:
        users.login("", "")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["username", "password"]


def test_validate_token_from_field_or_bearer_header(users, admin):
    by_field = _validate(users, admin.access_token)
    by_header = users.auth.ValidateToken(
        auth_pb.ValidateTokenRequest(), metadata=bearer(admin.access_token), timeout=10
    )
    assert by_field.valid and by_header.valid
    assert by_field.user_id == by_header.user_id == admin.user.user_id
    assert by_field.username == "admin"
    assert list(by_field.permissions) == ["*"]
    assert by_field.expires_at.seconds > 0
    assert rejected(_validate, users, "") == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


def test_refresh_rotates_and_reuse_revokes_the_family(users, admin):
    _create(users, admin, "rotator")
    first = users.login("rotator", "correct horse battery")
    second = users.auth.RefreshToken(
        auth_pb.RefreshTokenRequest(refresh_token=first.refresh_token), timeout=10
    )
    assert second.refresh_token != first.refresh_token
    assert _validate(users, second.access_token).username == "rotator"
    third = users.auth.RefreshToken(
        auth_pb.RefreshTokenRequest(refresh_token=second.refresh_token), timeout=10
    )
    # Presenting a spent token: refused, and every token of the session dies with it.
    assert rejected(
        users.auth.RefreshToken, auth_pb.RefreshTokenRequest(refresh_token=first.refresh_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    for token in (first.access_token, second.access_token, third.access_token):
        assert rejected(_validate, users, token) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )
    assert rejected(
        users.auth.RefreshToken, auth_pb.RefreshTokenRequest(refresh_token=third.refresh_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    events = [t for t, data in _outbox_types(users) if t.startswith("users.auth.refresh")]
    assert events == [
        "users.auth.refreshed",
        "users.auth.refreshed",
        "users.auth.refresh_reuse_detected",
    ]


def test_tokens_cannot_stand_in_for_each_other(users, admin):
    assert rejected(
        users.auth.RefreshToken, auth_pb.RefreshTokenRequest(refresh_token=admin.access_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_TYPE_MISMATCH")
    assert rejected(_validate, users, admin.refresh_token) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_TYPE_MISMATCH",
    )


def test_logout_revokes_access_and_refresh_tokens(users, admin):
    _create(users, admin, "leaver")
    session = users.login("leaver", "correct horse battery")
    response = users.auth.Logout(
        auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10
    )
    assert (
        response.session_id
        == jwt.decode(session.access_token, options={"verify_signature": False})["sid"]
    )
    assert rejected(_validate, users, session.access_token) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    assert rejected(
        users.auth.RefreshToken, auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    # The revoked token no longer authenticates calls either.
    assert rejected(
        users.auth.Logout, auth_pb.LogoutRequest(), metadata=bearer(session.access_token)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    # Another session of the same user is untouched.
    assert _validate(users, admin.access_token).valid


def test_logout_needs_a_token(users):
    assert rejected(users.auth.Logout, auth_pb.LogoutRequest()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_MISSING",
    )


def test_jwks_is_a_standard_document(users):
    response = users.auth.GetJwks(auth_pb.GetJwksRequest(), timeout=10)
    assert len(response.keys) >= 1
    key = response.keys[0]
    assert (key.kty, key.crv, key.alg, key.use) == ("EC", "P-256", "ES256", "sig")
    assert key.kid and key.x and key.y


def test_auth_events_go_to_the_outbox(users):
    users.login()
    rejected(users.login, "admin", "wrong password here")
    events = _outbox_types(users)
    types = {t for t, _ in events}
    assert {"users.auth.login_succeeded", "users.auth.login_failed", "users.user.created"} <= types
    assert not any(ADMIN_PASSWORD in json.dumps(data) for _, data in events)
    assert not any("wrong password here" in json.dumps(data) for _, data in events)


def test_disabled_user_cannot_log_in_and_loses_sessions(users, admin):
    created = _create(users, admin, "disabled-one")
    session = users.login("disabled-one", "correct horse battery")
    users.users.DisableUser(
        users_pb.DisableUserRequest(user_id=created.user_id),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    assert rejected(_validate, users, session.access_token)[1] == "TOKEN_REVOKED"
    assert rejected(users.login, "disabled-one", "correct horse battery") == (
        grpc.StatusCode.UNAUTHENTICATED,
        "ACCOUNT_DISABLED",
    )
    # A wrong password still answers like any wrong password.
    assert rejected(users.login, "disabled-one", "wrong password!!")[1] == "INVALID_CREDENTIALS"
    users.users.EnableUser(
        users_pb.EnableUserRequest(user_id=created.user_id),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    assert users.login("disabled-one", "correct horse battery").user.username == "disabled-one"


def _exp(token):
    return jwt.decode(token, options={"verify_signature": False})["exp"]


def test_refreshing_never_extends_a_session_beyond_its_maximum(tmp_path):
    settings = users_settings(tmp_path, session_max_seconds=120)
    with running_users(settings) as users:
        first = users.login()
        # Both tokens end with the session, though their own lifetimes are longer.
        assert 0 < first.expires_in <= 120 and 0 < first.refresh_expires_in <= 120
        session_end = _exp(first.refresh_token)
        assert _exp(first.access_token) == session_end
        second = users.auth.RefreshToken(
            auth_pb.RefreshTokenRequest(refresh_token=first.refresh_token), timeout=10
        )
        assert second.refresh_expires_in <= 120 and second.expires_in <= 120
        assert _exp(second.refresh_token) == _exp(second.access_token) == session_end


def test_a_session_past_its_maximum_cannot_be_refreshed(tmp_path):
    with running_users(users_settings(tmp_path)) as users:
        session = users.login()
        # As if opened a day ago under a longer maximum: its refresh token is still unexpired.
        engine = sa.create_engine(users.settings.database_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE sessions SET created_ns = created_ns - :age"),
                {"age": times.seconds(users.settings.session_max_seconds)},
            )
        engine.dispose()
        assert rejected(
            users.auth.RefreshToken,
            auth_pb.RefreshTokenRequest(refresh_token=session.refresh_token),
        ) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_EXPIRED")
        assert "users.auth.refreshed" not in [t for t, _ in _outbox_types(users)]


def test_racing_refreshes_of_one_token_never_fork_the_family(users, admin):
    _create(users, admin, "racer")
    session = users.login("racer", "correct horse battery")
    outcomes = refresh_race(users, session.refresh_token, callers=8)
    # One winner at most, whose new tokens die with the session when the others reuse its token.
    assert [o for o in outcomes if o.startswith("OK")] in ([], ["OK, then TOKEN_REVOKED"])
    assert {o for o in outcomes if not o.startswith("OK")} <= {
        "REFRESH_TOKEN_REUSED",
        "TOKEN_REVOKED",
    }
    assert rejected(_validate, users, session.access_token)[1] == "TOKEN_REVOKED"
