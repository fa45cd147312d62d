"""The outbox relay against a real Audit server and a real SQLite outbox."""

from __future__ import annotations

import dataclasses
import time

import pytest
import sqlalchemy as sa

from audit.server import build_server
from audit.v1 import audit_pb2
from common.db import Database
from common.outbox import OutboxEvent, append, outbox_table
from common.outbox_relay import OutboxRelay
from tests.integration.audit.helpers import eventually
from tests.support.tokens import MintedTokens


class Service:
    """A producing service's own database with its outbox."""

    def __init__(self, path):
        metadata = sa.MetaData()
        self.table = outbox_table(metadata)
        self.db = Database(f"sqlite:///{path}")
        self.db.migrate([metadata.create_all])

    def emit(self, count, *, type="oms.branch.created", start=0):
        events = [
            OutboxEvent(type=type, subject=f"branches/b{i}", actor="alice", data={"i": i})
            for i in range(start, start + count)
        ]
        with self.db.write() as conn:
            for event in events:
                append(conn, self.table, event)
        return events

    def pending(self):
        with self.db.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()


def audit_events(client):
    found, token = [], ""
    while True:
        page = client.stub.QueryEvents(
            audit_pb2.QueryEventsRequest(source="/oms", page_size=1000, page_token=token),
            metadata=client.reader,
            timeout=10,
        )
        found.extend(page.events)
        token = page.next_page_token
        if not token:
            return found


@pytest.fixture
def service(tmp_path):
    return Service(tmp_path / "oms.db")


@pytest.fixture
def relays(service, signer):
    started = []

    def start(port, **options):
        relay = OutboxRelay(
            service.db,
            service.table,
            target=f"127.0.0.1:{port}",
            source="/oms",
            token_source=options.pop("token_source", MintedTokens(signer)),
            **{"initial_backoff": 0.05, "max_backoff": 0.3, **options},
        )
        relay.start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


def test_rows_are_delivered_in_order_and_deleted(service, relays, audit_server, client):
    relays(audit_server.port, poll_seconds=30)
    sent = service.emit(50)
    eventually(lambda: service.pending() == 0)
    stored = audit_events(client)
    assert [e.id for e in stored] == [e.id for e in sent]
    assert all(e.source == "/oms" and e.type == "oms.branch.created" for e in stored)
    assert stored[7].data["i"] == 7 and stored[7].subject == "branches/b7"
    more = service.emit(5, start=50)
    eventually(lambda: service.pending() == 0)
    assert [e.id for e in audit_events(client)[50:]] == [e.id for e in more]


def test_events_written_while_audit_is_down_arrive_once_it_is_up(
    service, relays, settings, verifier, client_factory
):
    probe = build_server(settings, verifier)
    probe.start()
    port = probe.port
    probe.stop(0)
    relays(port)
    sent = service.emit(30)
    time.sleep(0.5)
    assert service.pending() == 30
    server = build_server(dataclasses.replace(settings, listen=f"127.0.0.1:{port}"), verifier)
    server.start()
    try:
        eventually(lambda: service.pending() == 0)
        stored = audit_events(client_factory(port))
        assert [e.id for e in stored] == [e.id for e in sent]
    finally:
        server.stop(0)


def test_crash_between_ack_and_delete_is_redelivered_and_deduplicated(
    service, relays, audit_server, client
):
    crashing = relays(audit_server.port)
    crashing._delete = lambda seqs: None  # dies after every ack, before deleting the row
    sent = service.emit(40)
    eventually(lambda: len(audit_events(client)) == 40)
    crashing.close()
    assert service.pending() == 40
    relays(audit_server.port)
    eventually(lambda: service.pending() == 0)
    stored = audit_events(client)
    assert [e.id for e in stored] == [e.id for e in sent]
    assert [e.sequence for e in stored] == list(range(1, 41))
    verdict = client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=client.reader)
    assert verdict.intact and verdict.verified_count == 40


def test_a_rejected_event_stays_in_the_outbox_and_does_not_block_the_rest(
    service, relays, audit_server, client
):
    good_before = service.emit(3)
    bad = service.emit(1, type="not-a-type")
    good_after = service.emit(3, start=3)
    relays(audit_server.port)
    eventually(lambda: service.pending() == 1)
    assert [e.id for e in audit_events(client)] == [e.id for e in good_before + good_after]
    with service.db.read() as conn:
        assert conn.execute(sa.select(service.table.c.event_id)).scalars().all() == [bad[0].id]


class _RevokedFirst(MintedTokens):
    """Hands out a token Audit refuses until the relay invalidates it."""

    def token(self) -> str:
        if self.invalidations == 0:
            return self._signer.mint(permissions=("audit:write",), ttl=-60)
        return super().token()


def test_a_refused_token_is_invalidated_and_replaced(service, relays, audit_server, signer):
    tokens = _RevokedFirst(signer)
    relays(audit_server.port, token_source=tokens)
    service.emit(3)
    eventually(lambda: service.pending() == 0)
    assert tokens.invalidations >= 1
