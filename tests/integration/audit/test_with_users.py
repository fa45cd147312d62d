"""The Audit Service with a real User Service: its tokens, its service accounts, its outbox."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa

from audit.server import build_server
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.db import Database
from common.outbox_relay import OutboxRelay
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


def test_the_user_services_outbox_reaches_the_log(users, audit, service_token):
    server, stub = audit
    users.login()
    database = Database(users.settings.database_url)
    relay = OutboxRelay(
        database,
        users_store.outbox,
        target=f"127.0.0.1:{server.port}",
        source="/users",
        token_source=service_token.token,
    )
    relay.start()
    try:
        admin = bearer(users.login().access_token)

        def pending():
            with database.read() as conn:
                return conn.execute(
                    sa.select(sa.func.count()).select_from(users_store.outbox)
                ).scalar_one()

        relay.notify()
        eventually(lambda: pending() == 0)
        logged = stub.QueryEvents(
            audit_pb2.QueryEventsRequest(source="/users", type="users.auth.", page_size=1000),
            metadata=admin,
            timeout=10,
        ).events
        assert [e.type for e in logged].count("users.auth.login_succeeded") >= 2
        assert all(e.source == "/users" for e in logged)
        assert stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=admin, timeout=10).intact
    finally:
        relay.close()
        database.dispose()
