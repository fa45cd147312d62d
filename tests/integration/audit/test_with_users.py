"""The Audit Service with a real User Service: its tokens, its service accounts, its outbox."""

from __future__ import annotations

import socket

import grpc
import pytest
import sqlalchemy as sa

from audit.server import build_server
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.db import Database
from common.users_client import ServiceTokenSource, UsersClient
from tests.integration.audit.conftest import make_event
from tests.integration.audit.helpers import eventually
from tests.support.users import bearer, running_users, users_settings
from users import store as users_store


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with running_users(users_settings(tmp_path_factory.mktemp("users"))) as running:
        yield running


@pytest.fixture
def audit(users, settings):
    client = UsersClient(users.target)
    client.start()
    assert client.revocations.wait_ready(5)
    server = build_server(settings, client.verifier(settings.runtime))
    server.on_stop.append(client.close)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, audit_pb2_grpc.AuditServiceStub(channel)
    server.stop(0)


@pytest.fixture
def service_token(users):
    client = UsersClient(users.target)
    yield ServiceTokenSource.from_env(
        client, default_username="svc-oms", data_dir=users.settings.data_dir
    )
    client.close()


def test_service_account_writes_and_admin_reads(users, audit, service_token):
    _, stub = audit
    event = make_event(source="/oms")
    stored = stub.PublishEvent(
        audit_pb2.PublishEventRequest(event=event), metadata=service_token.metadata(), timeout=10
    )
    assert stored.sequence == 1
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=service_token.metadata())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = bearer(users.login().access_token)
    found = stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=admin, timeout=10)
    assert [e.id for e in found.events] == [event.id]
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=bearer("not-a-token"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_user_services_outbox_reaches_the_log(tmp_path, settings):
    """Logins on a User Service that relays to Audit land in the log, verified with its keys."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        users_address = f"127.0.0.1:{probe.getsockname()[1]}"
    client = UsersClient(users_address)
    client.start()
    audit_server = build_server(settings, client.verifier(settings.runtime))
    audit_server.on_stop.append(client.close)
    audit_server.start()
    relaying = users_settings(tmp_path / "users", address=users_address)
    try:
        with (
            running_users(relaying, audit_target=f"127.0.0.1:{audit_server.port}") as users,
            grpc.insecure_channel(f"127.0.0.1:{audit_server.port}") as channel,
        ):
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            assert client.revocations.wait_ready(10)
            admin = bearer(users.login().access_token)
            users.login()

            def logged() -> list[audit_pb2.Event]:
                return list(
                    stub.QueryEvents(
                        audit_pb2.QueryEventsRequest(source="/users", type="users.auth."),
                        metadata=admin,
                        timeout=10,
                    ).events
                )

            eventually(lambda: [e.type for e in logged()].count("users.auth.login_succeeded") == 2)
            assert all(e.source == "/users" for e in logged())
            # The relay deletes a row after Audit's ack, a moment after the event is queryable.
            outbox = Database(relaying.database_url)
            pending = sa.select(sa.func.count()).select_from(users_store.outbox)

            def outbox_is_empty() -> bool:
                with outbox.read() as conn:
                    return bool(conn.execute(pending).scalar_one() == 0)

            eventually(outbox_is_empty)
            outbox.dispose()
            assert stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=admin, timeout=10).intact
    finally:
        audit_server.stop(0)
