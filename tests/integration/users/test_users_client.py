"""The User Service's client side against a real User Service.

Local verification, revocations within a second, and what is trusted while the revocation
stream is down.
"""

import asyncio
import contextlib
import dataclasses
import json
import time

import grpc
import pytest

from common import errors
from common.config import RuntimeSettings
from common.status import from_rpc_error
from common.users_client import ServiceTokenSource, UsersClient, bearer, connect_users
from tests.support.users import running_users, users_settings
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import user_service_pb2 as users_pb


def _runtime():
    return dataclasses.replace(RuntimeSettings.from_env(), grace_seconds=0)


def _connect(users):
    return connect_users(
        _runtime(),
        target=users.target,
        default_username="svc-oms",
        data_dir=users.settings.data_dir,
    )


async def _eventually_refused(verifier, token, *, within):
    """How long until ``token`` is refused as revoked; fails after ``within`` seconds."""
    started = time.monotonic()
    while True:
        try:
            await verifier.authenticate(token)
        except errors.Unauthenticated as exc:
            assert exc.reason == "TOKEN_REVOKED"
            return time.monotonic() - started
        assert time.monotonic() - started < within, "the revocation was not enforced in time"
        await asyncio.sleep(0.01)


async def _login(client, username="admin", password="admin-password-for-tests"):
    return await client.auth.Login(
        auth_pb.LoginRequest(username=username, password=password), timeout=10
    )


async def _logout(client, session):
    await client.auth.Logout(
        auth_pb.LogoutRequest(), metadata=bearer(session.access_token), timeout=10
    )


def test_verification_fails_closed_until_revocations_are_known(users):
    async def scenario():
        users_link = _connect(users)
        session = await _login(users_link.client)
        with pytest.raises(errors.Unavailable) as caught:
            await users_link.verifier.authenticate(session.access_token)
        assert caught.value.reason == "REVOCATIONS_UNAVAILABLE"
        await users_link.client.close()

    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def _following(users):
    """A service's link to ``users`` (its target and service account).

    It is caught up with its revocations and follows them until the block ends.
    """
    link = _connect(users)
    follower = asyncio.create_task(link.revocations.run())
    try:
        await asyncio.wait_for(link.revocations.wait_ready(), 5)
        yield link
    finally:
        follower.cancel()
        await link.client.close()


async def _until(condition):
    while not condition():
        await asyncio.sleep(0.01)


def test_verifies_and_sees_a_revocation_within_a_second(users):
    async def scenario():
        async with _following(users) as link:
            session = await _login(link.client)
            assert (await link.verifier.authenticate(session.access_token)).username == "admin"
            await _logout(link.client, session)
            await _eventually_refused(link.verifier, session.access_token, within=1.0)

    asyncio.run(scenario())


def test_a_restarted_user_service_is_followed_again_within_a_second(tmp_path):
    settings = users_settings(tmp_path)
    with running_users(settings) as first:
        port = first.server.port
    settings = dataclasses.replace(settings, listen=f"127.0.0.1:{port}")

    async def scenario():
        with running_users(settings) as users:
            async with _following(users) as link:
                session = await _login(link.client)
                await link.verifier.authenticate(session.access_token)
                await asyncio.to_thread(users.server.stop, 1)
                with running_users(settings):
                    back = time.monotonic()
                    await _logout(link.client, session)
                    await _eventually_refused(link.verifier, session.access_token, within=1.0)
                    assert time.monotonic() - back < 2.0
                    await asyncio.wait_for(_until(lambda: link.revocations.live), 2)

    asyncio.run(scenario())


def test_while_the_stream_is_refused_tokens_are_confirmed_with_the_user_service(tmp_path):
    """The follower's account is disabled, so after a restart it cannot follow again.

    Its view may be stale while the User Service answers, so each token is confirmed with it.
    """
    settings = users_settings(tmp_path)

    async def scenario():
        with running_users(settings) as users:
            async with _following(users) as link:
                session = await _login(link.client)
                await link.verifier.authenticate(session.access_token)
                admin = bearer(session.access_token)
                follower_id = await _user_id(link.client, admin, "svc-oms")
                await link.client.users.DisableUser(
                    users_pb.DisableUserRequest(user_id=follower_id), metadata=admin, timeout=10
                )
                await asyncio.to_thread(users.server.stop, 0)
                again = dataclasses.replace(settings, listen=users.target)
                with running_users(again):
                    await asyncio.sleep(0.5)  # the follower's logins are refused meanwhile
                    assert not link.revocations.live
                    await _logout(link.client, session)
                    await _eventually_refused(link.verifier, session.access_token, within=1.0)
                    fresh = await _login(link.client)
                    await link.client.users.EnableUser(
                        users_pb.EnableUserRequest(user_id=follower_id),
                        metadata=bearer(fresh.access_token),
                        timeout=10,
                    )
                    await asyncio.wait_for(_until(lambda: link.revocations.live), 3)

    asyncio.run(scenario())


async def _user_id(client, metadata, username):
    listed = await client.users.ListUsers(
        users_pb.ListUsersRequest(page_size=100), metadata=metadata, timeout=10
    )
    return next(u.user_id for u in listed.users if u.username == username)


def test_only_an_unreachable_user_service_lets_locally_verified_tokens_through(tmp_path):
    async def scenario():
        with running_users(users_settings(tmp_path)) as users:
            async with _following(users) as link:
                session = await _login(link.client)
                await link.verifier.authenticate(session.access_token)
                await asyncio.to_thread(users.server.stop, 0)
                # Nothing can be revoked while nobody can reach the User Service.
                principal = await link.verifier.authenticate(session.access_token)
                assert principal.username == "admin"

    asyncio.run(scenario())


def test_service_token_source_logs_in_with_the_first_start_file(users):
    async def scenario():
        client = UsersClient(users.target)
        source = ServiceTokenSource.from_env(
            client, default_username="svc-oms", data_dir=users.settings.data_dir
        )
        token = await source.token()
        assert await source.token() == token
        validated = await client.auth.ValidateToken(
            auth_pb.ValidateTokenRequest(token=token), timeout=10
        )
        assert validated.username == "svc-oms"
        assert {"audit:write", "users:read", "schema:read", "revocations:watch"} <= set(
            validated.permissions
        )
        source.invalidate()
        assert await source.token() != token
        await client.close()

    asyncio.run(scenario())


def test_service_token_source_refreshes_before_expiry(users):
    async def scenario():
        client = UsersClient(users.target)
        now = [1_000.0]
        source = ServiceTokenSource(
            client, "svc-audit", _password(users, "svc-audit"), clock=lambda: now[0]
        )
        first = await source.token()
        now[0] += 280  # within the 30 s margin of the 300 s access token
        second = await source.token()
        assert second != first
        # The refresh spent the first refresh token: the session rotated, no new login.
        sessions = [
            (
                await client.auth.ValidateToken(auth_pb.ValidateTokenRequest(token=t), timeout=10)
            ).session_id
            for t in (first, second)
        ]
        assert sessions[0] == sessions[1]
        await client.close()

    asyncio.run(scenario())


def test_a_missing_service_password_is_unavailable_with_the_way_to_fix_it(tmp_path, users):
    async def scenario():
        client = UsersClient(users.target)
        source = ServiceTokenSource.from_env(client, default_username="svc-oms", data_dir=tmp_path)
        with pytest.raises(errors.Unavailable) as caught:
            await source.token()
        assert caught.value.reason == "SERVICE_CREDENTIALS_MISSING"
        assert "MESH_SERVICE_PASSWORD" in caught.value.message
        await client.close()

    asyncio.run(scenario())


def _password(users, name):
    return json.loads((users.settings.data_dir / "service-accounts.json").read_text())[name]


def test_grpc_errors_of_the_user_service_come_back_as_domain_errors(users):
    async def scenario():
        client = UsersClient(users.target)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.auth.ValidateToken(auth_pb.ValidateTokenRequest(token="x"), timeout=5)
        error = from_rpc_error(caught.value)
        assert isinstance(error, errors.Unauthenticated) and error.reason == "TOKEN_MALFORMED"
        await client.close()

    asyncio.run(scenario())
