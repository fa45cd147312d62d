"""VerifyLog over a real server, with rows changed and deleted behind the service's back."""

from __future__ import annotations

import json
import sqlite3
import threading

import grpc
import pytest

from audit.v1 import audit_pb2
from tests.support.audit import make_event

Kind = audit_pb2.LogBreak.Kind


def verify(client, start=0, end=0):
    return client.stub.VerifyLog(
        audit_pb2.VerifyLogRequest(start_sequence=start, end_sequence=end),
        metadata=client.reader,
        timeout=30,
    )


@pytest.fixture
def tamper(settings):
    """Runs SQL on the service's SQLite file directly, as an intruder with file access would."""
    path = settings.database_url.removeprefix("sqlite:///")

    def run(sql, *params):
        with sqlite3.connect(path) as conn:
            conn.execute(sql, params)

    return run


@pytest.fixture
def logged(client):
    client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(events=[make_event(data={"n": i}) for i in range(1, 21)]),
        metadata=client.writer,
        timeout=10,
    )
    return client


def test_intact_log_verifies_whole_and_by_range(logged):
    whole = verify(logged)
    assert whole.intact and not whole.HasField("first_break")
    assert (whole.verified_count, whole.start_sequence, whole.end_sequence) == (20, 1, 20)
    assert whole.head_sequence == 20
    last = logged.stub.GetEvent(
        audit_pb2.GetEventRequest(name="events/20"), metadata=logged.reader, timeout=10
    )
    assert whole.head_hash == last.hash
    part = verify(logged, 5, 9)
    assert part.intact and part.verified_count == 5


def test_empty_log_is_intact(client):
    result = verify(client)
    assert result.intact and result.verified_count == 0 and result.head_sequence == 0


def test_changed_data_is_detected_at_that_row(logged, tamper):
    tamper("UPDATE events SET data = ? WHERE sequence = 7", json.dumps({"n": 700}))
    result = verify(logged)
    assert not result.intact
    assert result.verified_count == 6
    assert result.first_break.sequence == 7
    assert result.first_break.kind == Kind.KIND_HASH_MISMATCH
    assert verify(logged, 1, 6).intact
    assert not verify(logged, 7, 7).intact


def test_changed_row_with_recomputed_hash_breaks_the_next_link(logged, tamper):
    tamper("UPDATE events SET hash = ? WHERE sequence = 4", "f" * 64)
    result = verify(logged)
    assert result.first_break.sequence == 4
    assert result.first_break.kind == Kind.KIND_HASH_MISMATCH
    result = verify(logged, 5)
    assert result.first_break.sequence == 5
    assert result.first_break.kind == Kind.KIND_PREVIOUS_HASH_MISMATCH
    assert result.first_break.expected == "f" * 64


def test_deleted_row_is_detected(logged, tamper):
    tamper("DELETE FROM events WHERE sequence = 12")
    result = verify(logged)
    assert not result.intact
    assert result.verified_count == 11
    assert result.first_break.sequence == 12
    assert result.first_break.kind == Kind.KIND_SEQUENCE_MISSING
    assert "missing" in result.first_break.message


def test_deleted_tail_is_detected(logged, tamper):
    tamper("DELETE FROM events WHERE sequence >= 19")
    result = verify(logged)
    assert result.first_break.sequence == 19
    assert result.first_break.kind == Kind.KIND_SEQUENCE_MISSING


def test_rewritten_head_row_is_detected(logged, tamper):
    tamper("DELETE FROM events WHERE sequence = 20")
    tamper("UPDATE chain_head SET sequence = 19")
    result = verify(logged)
    assert result.first_break.kind == Kind.KIND_HEAD_MISMATCH
    assert result.first_break.sequence == 19


def test_bad_ranges_are_refused(logged):
    for start, end, code in (
        (-1, 0, grpc.StatusCode.INVALID_ARGUMENT),
        (5, 3, grpc.StatusCode.INVALID_ARGUMENT),
        (50, 0, grpc.StatusCode.OUT_OF_RANGE),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            verify(logged, start, end)
        assert caught.value.code() == code


def test_log_verifies_intact_while_events_keep_arriving(client):
    done = threading.Event()

    def ingest():
        try:
            for _ in range(60):
                client.stub.PublishEvents(
                    audit_pb2.PublishEventsRequest(events=[make_event() for _ in range(5)]),
                    metadata=client.writer,
                    timeout=10,
                )
        finally:
            done.set()

    writer = threading.Thread(target=ingest)
    writer.start()
    verdicts = []
    try:
        while not done.is_set() and len(verdicts) < 500:
            verdicts.append(verify(client))
    finally:
        writer.join(60)
    verdicts.append(verify(client))
    broken = [v.first_break for v in verdicts if not v.intact]
    assert broken == []
    assert verdicts[-1].verified_count == 300
