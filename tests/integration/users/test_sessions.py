"""Listing and ending sessions over a real port: your own, or anyone's as an admin."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.support.errors import violated_fields
from tests.support.users import bearer, rejected
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb

PASSWORD = "violet tugboat ossifies slowly"
FORWARDED = [("x-forwarded-for", "198.51.100.7")]


@pytest.fixture
def person(users, admin):
    name = f"sess-{uuid.uuid4().hex[:8]}"
    return users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=name), password=PASSWORD, roles=["viewer"]
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )


def _login(users, username, agent):
    """A login from a client calling itself ``agent``."""
    with grpc.insecure_channel(
        users.target, options=[("grpc.primary_user_agent", agent)]
    ) as channel:
        return auth_grpc.AuthServiceStub(channel).Login(
            auth_pb.LoginRequest(username=username, password=PASSWORD),
            metadata=FORWARDED,
            timeout=10,
        )


def _sessions(users, token, user_id, **paging):
    return users.auth.ListSessions(
        auth_pb.ListSessionsRequest(user_id=user_id, **paging), metadata=bearer(token), timeout=10
    )


def _validate(users, token):
    return users.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=token), timeout=10)


def test_you_see_your_sessions_and_end_one(users, person):
    laptop = _login(users, person.username, "laptop-browser/1.0")
    phone = _login(users, person.username, "phone-app/2.0")
    listed = _sessions(users, laptop.access_token, person.user_id).sessions
    assert [s.session_id for s in listed] == [
        _validate(users, t).session_id for t in (laptop.access_token, phone.access_token)
    ]
    first = listed[0]
    assert first.user_agent.startswith("laptop-browser/1.0")  # gRPC appends its own
    assert first.client_address == "198.51.100.7" and first.current
    assert not listed[1].current and listed[1].user_agent.startswith("phone-app/2.0")
    assert first.create_time.seconds > 0 and first.refresh_time == first.create_time

    users.auth.DeleteSession(
        auth_pb.DeleteSessionRequest(user_id=person.user_id, session_id=listed[1].session_id),
        metadata=bearer(laptop.access_token),
        timeout=10,
    )
    assert rejected(_validate, users, phone.access_token)[1] == "TOKEN_REVOKED"
    assert (
        rejected(
            users.auth.RefreshToken,
            auth_pb.RefreshTokenRequest(refresh_token=phone.refresh_token),
            timeout=10,
        )[1]
        == "TOKEN_REVOKED"
    )
    assert [
        s.session_id for s in _sessions(users, laptop.access_token, person.user_id).sessions
    ] == [first.session_id]
    again = auth_pb.DeleteSessionRequest(user_id=person.user_id, session_id=listed[1].session_id)
    assert rejected(
        users.auth.DeleteSession, again, metadata=bearer(laptop.access_token), timeout=10
    ) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")


def test_an_admin_ends_anyones_session_and_others_cannot(users, admin, person):
    mine = _login(users, person.username, "a")
    other = users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources.User(username=f"other-{uuid.uuid4().hex[:8]}"),
            password=PASSWORD,
            roles=["viewer"],
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    stranger = _login(users, other.username, "b")
    assert rejected(_sessions, users, stranger.access_token, person.user_id) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_PERMISSION",
    )
    (session,) = _sessions(users, admin.access_token, person.user_id).sessions
    assert not session.current
    request = auth_pb.DeleteSessionRequest(user_id=person.user_id, session_id=session.session_id)
    # Someone else's session is not found under your own name either.
    assert rejected(
        users.auth.DeleteSession,
        auth_pb.DeleteSessionRequest(user_id=other.user_id, session_id=session.session_id),
        metadata=bearer(stranger.access_token),
        timeout=10,
    ) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")
    assert rejected(
        users.auth.DeleteSession, request, metadata=bearer(stranger.access_token), timeout=10
    ) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSION")
    users.auth.DeleteSession(request, metadata=bearer(admin.access_token), timeout=10)
    assert rejected(_validate, users, mine.access_token)[1] == "TOKEN_REVOKED"


def test_sessions_come_a_page_at_a_time(users, person):
    tokens = [_login(users, person.username, f"agent-{i}").access_token for i in range(3)]
    first = _sessions(users, tokens[0], person.user_id, page_size=2)
    assert len(first.sessions) == 2 and first.next_page_token
    rest = _sessions(
        users, tokens[0], person.user_id, page_size=2, page_token=first.next_page_token
    )
    assert len(rest.sessions) == 1 and not rest.next_page_token
    assert len({s.session_id for s in [*first.sessions, *rest.sessions]}) == 3
    with pytest.raises(grpc.RpcError) as caught:
        _sessions(users, tokens[0], person.user_id, page_token="junk")
    assert violated_fields(caught.value) == ["page_token"]
