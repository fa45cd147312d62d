"""WatchRevocations: replay, live delivery, and resuming after a disconnect without a gap."""

import dataclasses
import queue
import threading
import time

import grpc
import pytest
import sqlalchemy as sa

from tests.support.errors import reason
from tests.support.users import bearer, rejected, running_users, users_settings
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources_pb
from users.v1 import user_service_pb2 as users_pb


def _logout(users, session):
    users.auth.Logout(auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10)


def _sid(session):
    import jwt

    return jwt.decode(session.access_token, options={"verify_signature": False})["sid"]


@pytest.fixture(scope="module")
def service(users):
    return users.service_login()


class _Follower:
    """Reads a stream on a thread so the test can wait for items with a bound."""

    def __init__(self, users, after, token=None):
        token = token or users.service_login().access_token
        self.call = users.auth.WatchRevocations(
            auth_pb.WatchRevocationsRequest(after_sequence=after), metadata=bearer(token)
        )
        self.items = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for response in self.call:
                self.items.put(response)
        except grpc.RpcError as error:
            self.items.put(error)

    def next(self):
        item = self.items.get(timeout=5)
        assert not isinstance(item, Exception), item
        return item

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=5)


def test_stream_replays_then_delivers_live_and_resumes(users, service):
    before = users.login()
    _logout(users, before)
    follower = _Follower(users, after=0, token=service.access_token)
    try:
        replay = follower.next()
        assert replay.caught_up
        replayed = {r.session_id: r for r in replay.revocations}
        assert replayed[_sid(before)].reason == "logout"
        last = replay.revocations[-1].sequence
        # A live revocation reaches the open stream.
        live_session = users.login()
        _logout(users, live_session)
        live = follower.next()
        assert [r.session_id for r in live.revocations] == [_sid(live_session)]
        assert live.revocations[0].sequence > last
        assert live.revocations[0].expire_time.seconds > live.revocations[0].revoke_time.seconds
        last = live.revocations[0].sequence
    finally:
        follower.close()
    # Revocations while disconnected arrive, in order and without a gap, on resume.
    missed = [users.login() for _ in range(3)]
    for session in missed:
        _logout(users, session)
    resumed = _Follower(users, after=last, token=service.access_token)
    try:
        batch = resumed.next()
        assert batch.caught_up
        assert [r.session_id for r in batch.revocations] == [_sid(s) for s in missed]
        sequences = [r.sequence for r in batch.revocations]
        assert sequences == sorted(sequences) and sequences[0] > last
    finally:
        resumed.close()


def test_an_idle_service_on_sqlite_reads_nothing_and_its_streams_still_go_live(tmp_path):
    """No other process writes its database, so nothing polls it between its own commits."""
    settings = users_settings(tmp_path)  # asks for a revocation poll every 0.1 s
    read: list[str] = []

    def count(conn, cursor, statement, *args):
        if str(conn.engine.url) == settings.database_url:
            read.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        with running_users(settings) as users:
            follower = _Follower(users, after=0)
            try:
                assert follower.next().caught_up
                time.sleep(0.3)  # the stream's catch-up and the login behind its token
                read.clear()
                time.sleep(1.5)
                assert read == []
                session = users.login()
                _logout(users, session)
                live = follower.next()
                assert [r.session_id for r in live.revocations] == [_sid(session)]
            finally:
                follower.close()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def test_stream_after_the_head_announces_caught_up_with_nothing(users, service):
    first = _Follower(users, after=0, token=service.access_token)
    try:
        head = max([0, *(r.sequence for r in first.next().revocations)])
    finally:
        first.close()
    follower = _Follower(users, after=head, token=service.access_token)
    try:
        response = follower.next()
        assert response.caught_up
        assert list(response.revocations) == []
    finally:
        follower.close()


def test_only_service_accounts_may_follow_revocations(users):
    """Anyone holding streams could take the places the enforcing services need."""
    request = auth_pb.WatchRevocationsRequest()

    def first_message(metadata=None):
        return next(iter(users.auth.WatchRevocations(request, metadata=metadata, timeout=10)))

    assert rejected(first_message) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    admin = users.login()
    users.users.CreateUser(
        users_pb.CreateUserRequest(
            user=resources_pb.User(username="watching-viewer"),
            password="viewer-password-long",
            roles=["viewer"],
        ),
        metadata=bearer(admin.access_token),
        timeout=10,
    )
    viewer = users.login("watching-viewer", "viewer-password-long")
    assert rejected(first_message, bearer(viewer.access_token)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_PERMISSION",
    )


def test_negative_sequence_is_invalid(users, service):
    call = users.auth.WatchRevocations(
        auth_pb.WatchRevocationsRequest(after_sequence=-1), metadata=bearer(service.access_token)
    )
    try:
        next(iter(call))
        raise AssertionError("the stream accepted a negative sequence")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_position_beyond_the_log_replays_it_rather_than_withholding_revocations(users, service):
    # A follower that saw sequence 10**9 of a log since replaced (e.g. a fresh database).
    session = users.login()
    _logout(users, session)
    follower = _Follower(users, after=10**9, token=service.access_token)
    try:
        replay = follower.next()
        assert replay.caught_up
        assert _sid(session) in {r.session_id for r in replay.revocations}
        live_session = users.login()
        _logout(users, live_session)
        assert [r.session_id for r in follower.next().revocations] == [_sid(live_session)]
    finally:
        follower.close()


def test_open_streams_are_bounded_and_give_their_places_back(tmp_path):
    base = users_settings(tmp_path)
    settings = dataclasses.replace(base, runtime=dataclasses.replace(base.runtime, max_streams=4))
    with running_users(settings) as users:
        token = users.service_login().access_token
        followers = [_Follower(users, after=0, token=token) for _ in range(4)]
        try:
            for follower in followers:
                assert follower.next().caught_up
            extra = users.auth.WatchRevocations(
                auth_pb.WatchRevocationsRequest(), metadata=bearer(token), timeout=10
            )
            with pytest.raises(grpc.RpcError) as refused:
                next(iter(extra))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason(refused.value) == "TOO_MANY_STREAMS"
            assert users.login().user.username == "admin"
        finally:
            for follower in followers:
                follower.close()

        # A closed stream gives its place back (once the server notices, within a second).
        def place_came_back() -> bool:
            again = _Follower(users, after=0, token=token)
            try:
                item = again.items.get(timeout=5)
            finally:
                again.close()
            return not isinstance(item, grpc.RpcError) and item.caught_up

        eventually(place_came_back, timeout=10, interval=0.2, what="a stream place comes back")


def test_streams_end_normally_when_the_server_starts_draining(tmp_path):
    """Followers are told the stream is over when draining starts, so they reconnect elsewhere.

    Otherwise the stream would hold the drain for the grace period and then be cancelled.
    """
    with running_users(users_settings(tmp_path)) as users:
        follower = _Follower(users, after=0)
        assert follower.next().caught_up
        stopper = threading.Thread(target=users.server.stop, args=(60,))
        stopper.start()
        follower.thread.join(30)
        assert not follower.thread.is_alive()
        assert follower.call.code() == grpc.StatusCode.OK
        stopper.join(30)
        assert not stopper.is_alive()
