"""The Audit Service with a real User Service: its tokens, its service accounts, its outbox."""

from __future__ import annotations

import socket

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audit.server import build_server
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.db import Database
from common.server import MeshServer
from common.users_client import connect_users
from tests.support.audit import make_event
from tests.support.servers import RunningServer
from tests.support.users import bearer, running_users, users_settings
from tests.support.waiting import eventually
from users import sql_store as users_store


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with running_users(users_settings(tmp_path_factory.mktemp("users"))) as running:
        yield running


def audit_following(settings, users_target, data_dir) -> RunningServer:
    """An Audit server verifying tokens of the User Service at ``users_target``.

    It is wired as its ``main`` wires it, with the service account of that data folder.
    """

    def build() -> MeshServer:
        link = connect_users(
            settings.runtime, target=users_target, default_username="svc-audit", data_dir=data_dir
        )
        server = build_server(settings, link.verifier)
        link.attach(server)
        return server

    return RunningServer(build)


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def audit(users, settings):
    server = audit_following(settings, users.target, users.settings.data_dir)
    eventually(lambda: _serving(server.target))
    with grpc.insecure_channel(server.target) as channel:
        yield server, audit_pb2_grpc.AuditServiceStub(channel)
    server.stop()


def test_service_account_writes_and_admin_reads(users, audit):
    _, stub = audit
    service = bearer(users.service_login("svc-oms").access_token)
    event = make_event(source="/oms")
    stored = stub.PublishEvent(
        audit_pb2.PublishEventRequest(event=event), metadata=service, timeout=10
    )
    assert stored.sequence == 1
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=service)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = bearer(users.login().access_token)
    found = stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=admin, timeout=10)
    assert [(e.id, e.actor) for e in found.events] == [
        (event.id, event.actor),
        (found.events[1].id, "svc-oms"),
    ]
    assert found.events[1].type == "audit.call.denied"
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=bearer("not-a-token"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_user_services_outbox_reaches_the_log(tmp_path, settings):
    """Logins on a User Service that relays to Audit land in the log, verified with its keys."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        users_address = f"127.0.0.1:{probe.getsockname()[1]}"
    relaying = users_settings(tmp_path / "users", listen=users_address)
    # Audit starts first and waits for the User Service, as on a machine booting the mesh.
    audit_server = audit_following(settings, users_address, relaying.data_dir)
    try:
        with (
            running_users(relaying, audit_target=audit_server.target) as users,
            grpc.insecure_channel(audit_server.target) as channel,
        ):
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            eventually(lambda: _serving(audit_server.target))
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

            # The admin's two logins (the Audit Service's own service account logs in too).
            eventually(
                lambda: (
                    [(e.type, e.actor) for e in logged()].count(
                        ("users.auth.login_succeeded", "admin")
                    )
                    == 2
                )
            )
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
        audit_server.stop()
