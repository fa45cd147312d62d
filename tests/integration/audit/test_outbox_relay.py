"""The outbox relay against a real Audit server and a real SQLite outbox."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import pytest
import sqlalchemy as sa
from google.protobuf import json_format

from audit.v1 import audit_pb2
from common.blocking import Blocking
from common.canonical import canonical_json, nested_deeper
from common.db import Database
from common.outbox import (
    MAX_ACTOR,
    MAX_DATA_NESTING,
    MAX_SUBJECT,
    OutboxEvent,
    append,
    outbox_table,
)
from common.outbox_relay import OutboxRelay
from tests.support.audit import start_audit
from tests.support.postgres import scratch_database
from tests.support.servers import Background
from tests.support.tokens import MintedTokens
from tests.support.waiting import eventually


class Service:
    """A producing service's own database with its outbox."""

    def __init__(self, url):
        metadata = sa.MetaData()
        self.table = outbox_table(metadata)
        self.db = Database(url)
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
    return Service(f"sqlite:///{tmp_path / 'oms.db'}")


async def _relay(relay):
    try:
        await relay.run()
    finally:
        await relay.close()


@pytest.fixture
def relays(service, signer):
    started = []

    def start(port, *, of=service, **options):
        token_source = options.pop("token_source", MintedTokens(signer))
        running = Background(
            lambda: OutboxRelay(
                of.db,
                of.table,
                target=f"127.0.0.1:{port}",
                source="/oms",
                token_source=token_source,
                blocking=Blocking(2),
                **{"initial_backoff": 0.05, "max_backoff": 0.3, **options},
            ),
            _relay,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


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
    probe = start_audit(settings, verifier)
    port = probe.port
    probe.stop()
    relays(port)
    sent = service.emit(30)
    time.sleep(0.5)
    assert service.pending() == 30
    server = start_audit(dataclasses.replace(settings, listen=f"127.0.0.1:{port}"), verifier)
    try:
        eventually(lambda: service.pending() == 0)
        stored = audit_events(client_factory(port))
        assert [e.id for e in stored] == [e.id for e in sent]
    finally:
        server.stop()


def test_crash_between_ack_and_delete_is_redelivered_and_deduplicated(
    service, relays, audit_server, client
):
    crashing = relays(audit_server.port)
    crashing.subject._delete = lambda seqs: None  # dies after every ack, before deleting the row
    sent = service.emit(40)
    eventually(lambda: len(audit_events(client)) == 40)
    crashing.stop()
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

    async def token(self) -> str:
        if self.invalidations == 0:
            return self._signer.mint(permissions=("audit:write",), ttl=-60)
        return await super().token()


def test_an_event_past_the_audit_logs_size_is_recorded_with_its_largest_values_digested(
    service, relays, audit_server, client
):
    """An action's long parameter or a tag's long message must not cost the change its record."""
    huge = "p" * 100_000
    event = OutboxEvent(
        type="oms.action.executed",
        subject="branches/main/action-types/load",
        actor="alice",
        data={"action_type": "load", "parameters": {"blob": huge, "count": 3}},
    )
    with service.db.write() as conn:
        append(conn, service.table, event)
    relays(audit_server.port)
    eventually(lambda: service.pending() == 0)
    (stored,) = [e for e in audit_events(client) if e.id == event.id]
    data = json_format.MessageToDict(stored.data)
    assert data["action_type"] == "load" and data["parameters"]["count"] == 3
    encoded = json.dumps(huge).encode()
    assert data["parameters"]["blob"] == {
        "omitted_bytes": len(encoded),
        "sha256": hashlib.sha256(encoded).hexdigest(),
    }


def _delivered_beside_an_older_row(
    service, relays, audit_server, client, written: OutboxEvent, earlier: OutboxEvent
) -> dict[str, audit_pb2.Event]:
    """The log's events by id, once ``written`` and the rows around it are delivered.

    Before it, ``earlier`` as a row an older outbox wrote, taken as it was given; after it,
    an ordinary event.
    """
    with service.db.write() as conn:
        conn.execute(
            service.table.insert(),
            {
                "event_id": earlier.id,
                "type": earlier.type,
                "subject": earlier.subject,
                "actor": earlier.actor,
                "time_ns": earlier.time_ns,
                "data": canonical_json(earlier.body()),
            },
        )
        append(conn, service.table, written)
    (after,) = service.emit(1)
    relays(audit_server.port)
    eventually(lambda: service.pending() == 0)
    stored = {e.id: e for e in audit_events(client)}
    assert {earlier.id, written.id, after.id} <= stored.keys()
    return stored


def test_data_nested_too_deep_is_delivered_capped_and_blocks_nothing(
    service, relays, audit_server, client
):
    """Such data once stopped the relay for good: no message could carry the row."""
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    written = OutboxEvent(
        type="oms.action.executed", subject="s", actor="alice", data={"parameters": {"p": deep}}
    )
    earlier = dataclasses.replace(written, id="earlier-row")  # before the outbox capped nesting
    stored = _delivered_beside_an_older_row(service, relays, audit_server, client, written, earlier)
    for event_id in (earlier.id, written.id):
        data = json_format.MessageToDict(stored[event_id].data)
        assert not nested_deeper(data, canonical_json(data), MAX_DATA_NESTING)
        assert set(data["parameters"]["p"]["a"]) == {"a"}


def test_a_subject_or_actor_a_caller_typed_is_recorded_however_it_was_typed(
    service, relays, audit_server, client
):
    """A failed login with a username holding control characters once lost its record."""
    typed = "eve\r\x00" + "x" * 600
    written = OutboxEvent(
        type="users.auth.login_failed",
        subject=f"usernames/{typed}",
        actor=typed,
        data={"username": typed},
    )
    earlier = dataclasses.replace(  # before they were made printable
        written, id="earlier-row", subject="usernames/eve\r", actor="eve\n"
    )
    stored = _delivered_beside_an_older_row(service, relays, audit_server, client, written, earlier)
    assert (stored[earlier.id].subject, stored[earlier.id].actor) == (
        "usernames/eve\ufffd",
        "eve\ufffd",
    )
    recorded = stored[written.id]
    assert recorded.subject.startswith("usernames/eve\ufffd\ufffdxxx")
    assert len(recorded.subject) == MAX_SUBJECT and recorded.subject.endswith("\u2026")
    assert recorded.actor.startswith("eve\ufffd\ufffdxxx") and len(recorded.actor) == MAX_ACTOR
    assert json_format.MessageToDict(recorded.data)["username"] == typed


def test_a_refused_token_is_invalidated_and_replaced(service, relays, audit_server, signer):
    tokens = _RevokedFirst(signer)
    relays(audit_server.port, token_source=tokens)
    service.emit(3)
    eventually(lambda: service.pending() == 0)
    assert tokens.invalidations >= 1


def test_an_idle_relay_reads_its_outbox_only_when_an_event_commits(
    service, relays, audit_server, client
):
    """Its own reads and deletes, and writes that append no event, never wake it."""
    statements = []

    def count(conn, cursor, statement, *args):
        if "outbox" in statement:
            statements.append(statement.split()[0])

    sa.event.listen(service.db.engine, "before_cursor_execute", count)
    relays(audit_server.port)
    service.emit(3)
    eventually(lambda: service.pending() == 0)
    time.sleep(0.5)  # the last ack's delete and the read after it
    statements.clear()
    other = sa.Table("other", sa.MetaData(), sa.Column("n", sa.Integer))
    with service.db.write() as conn:
        other.create(conn)
    for n in range(20):
        with service.db.write() as conn:
            conn.execute(other.insert().values(n=n))
    time.sleep(3)
    assert len(statements) <= 2, statements  # at most the fallback poll (every 5 s)
    service.emit(1)
    eventually(lambda: service.pending() == 0)
    assert "SELECT" in statements and "DELETE" in statements


@pytest.mark.postgres
def test_replicas_sharing_an_outbox_deliver_each_row_once_and_hand_the_lease_on(
    relays, audit_server, client
):
    """Two replicas' relays: one leads, the other takes over when it stops.

    Neither sends a row the other sent: Audit would deduplicate it, but each relay counts the
    acknowledgements it got, and only the leader has any.
    """
    with scratch_database("relays") as url:
        replicas = [Service(url), Service(url)]
        running = [relays(audit_server.port, of=replica) for replica in replicas]
        sent = [e.id for i in range(6) for e in replicas[i % 2].emit(20, start=20 * i)]
        eventually(lambda: replicas[0].pending() == 0)
        delivered = [r.subject.samples() for r in running]
        counts = [
            next(m for m in samples if m.name == "mesh_outbox_relay_delivered").samples[0].value
            for samples in delivered
        ]
        assert sorted(counts) == [0, len(sent)]
        leader = counts.index(len(sent))
        running[leader].stop()
        more = [e.id for e in replicas[leader].emit(20, start=120)]
        eventually(lambda: replicas[0].pending() == 0)
        assert [e.id for e in audit_events(client)] == sent + more
        for replica in replicas:
            replica.db.dispose()
