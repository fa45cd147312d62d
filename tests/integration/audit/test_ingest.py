"""The three ingest paths over a real server: same validation, same idempotency, durable acks."""

from __future__ import annotations

import itertools
import threading

import grpc
import pytest

from audit.v1 import audit_pb2
from tests.support.audit import make_event
from tests.support.errors import error_info, reason, violated_fields


def publish(client, event):
    return client.stub.PublishEvent(
        audit_pb2.PublishEventRequest(event=event), metadata=client.writer, timeout=10
    )


def publish_batch(client, events):
    return client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(events=events), metadata=client.writer, timeout=10
    ).results


def stream(client, events, per_message=1):
    """Send ``events`` on one StreamEvents call, ``per_message`` to a message; the acks, flat."""
    requests = iter(
        [
            audit_pb2.StreamEventsRequest(events=events[i : i + per_message])
            for i in range(0, len(events), per_message)
        ]
    )
    responses = client.stub.StreamEvents(requests, metadata=client.writer, timeout=10)
    return [ack for response in responses for ack in response.acks]


def all_events(client, **filters):
    found, token = [], ""
    while True:
        page = client.stub.QueryEvents(
            audit_pb2.QueryEventsRequest(page_size=1000, page_token=token, **filters),
            metadata=client.reader,
            timeout=10,
        )
        found.extend(page.events)
        token = page.next_page_token
        if not token:
            return found


def test_unary_publish_returns_the_stored_event(client):
    sent = make_event(data={"branch": "main", "nested": {"ok": True, "list": [1, "two"]}})
    stored = publish(client, sent)
    assert stored.sequence == 1
    assert stored.name == "events/1"
    assert (stored.id, stored.source, stored.type, stored.subject, stored.actor) == (
        sent.id,
        sent.source,
        sent.type,
        sent.subject,
        sent.actor,
    )
    assert stored.time == sent.time
    assert stored.data == sent.data
    assert stored.previous_hash == "0" * 64
    assert len(stored.hash) == 64
    assert stored.recorded_time.seconds > 0
    fetched = client.stub.GetEvent(
        audit_pb2.GetEventRequest(name="events/1"), metadata=client.reader, timeout=10
    )
    assert fetched == stored


def test_unary_redelivery_returns_the_original_and_stores_once(client):
    event = make_event()
    first = publish(client, event)
    publish(client, make_event())
    again = publish(client, event)
    assert again == first
    assert [e.sequence for e in all_events(client, id=event.id)] == [first.sequence]


def test_same_id_from_another_source_is_another_event(client):
    event = make_event(id="shared-id", source="/oms")
    other = make_event(id="shared-id", source="/users")
    assert publish(client, event).sequence != publish(client, other).sequence


def test_reused_id_with_different_content_is_refused(client):
    event = make_event(data={"v": 1})
    original = publish(client, event)
    changed = audit_pb2.Event()
    changed.CopyFrom(event)
    changed.data["v"] = 2
    with pytest.raises(grpc.RpcError) as caught:
        publish(client, changed)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(caught.value) == "EVENT_ID_CONFLICT"
    assert [e.data for e in all_events(client, id=event.id)] == [original.data]


def test_invalid_event_reports_every_violation(client):
    bad = audit_pb2.Event(
        type="Not A Type", source="has space", subject="x\x01y", traceparent="00-0-0-0"
    )
    bad.data["n"] = float("nan")
    with pytest.raises(grpc.RpcError) as caught:
        publish(client, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(caught.value) == "INVALID_ARGUMENT"
    assert error_info(caught.value).domain == "audit.mesh"
    assert set(violated_fields(caught.value)) == {
        "event.id",
        "event.source",
        "event.type",
        "event.subject",
        "event.traceparent",
        "event.data",
    }
    assert all_events(client) == []


def test_batch_reports_a_result_per_event_and_keeps_the_good_ones(client):
    good_a, good_b = make_event(), make_event()
    bad = make_event(type="nodots")
    results = publish_batch(client, [good_a, bad, good_b, good_a])
    assert [r.id for r in results] == [good_a.id, bad.id, good_b.id, good_a.id]
    assert [r.sequence for r in results] == [1, 0, 2, 1]
    assert [r.duplicate for r in results] == [False, False, False, True]
    assert not results[0].HasField("error")
    assert results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert set(violated_fields(results[1].error)) == {"events[1].type"}
    assert [e.id for e in all_events(client)] == [good_a.id, good_b.id]
    again = publish_batch(client, [good_b, good_a])
    assert [(r.sequence, r.duplicate) for r in again] == [(2, True), (1, True)]


def test_batch_over_the_limit_is_refused_whole(client):
    with pytest.raises(grpc.RpcError) as caught:
        publish_batch(client, [make_event() for _ in range(1001)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(caught.value)) == {"events"}


@pytest.mark.parametrize("per_message", [1, 7, 1000])
def test_stream_acks_every_event_in_order_with_its_sequence(client, per_message):
    events = [make_event() for _ in range(300)]
    acks = stream(client, events, per_message)
    assert [a.id for a in acks] == [e.id for e in events]
    assert [a.sequence for a in acks] == list(range(1, 301))
    stored = all_events(client)
    assert [(e.id, e.sequence) for e in stored] == [(a.id, a.sequence) for a in acks]


def test_stream_message_with_too_many_or_no_events_ends_the_stream(client):
    for events in ([], [make_event() for _ in range(1001)]):
        with pytest.raises(grpc.RpcError) as caught:
            list(
                client.stub.StreamEvents(
                    iter([audit_pb2.StreamEventsRequest(events=events)]),
                    metadata=client.writer,
                    timeout=10,
                )
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violated_fields(caught.value)) == {"events"}
    assert all_events(client) == []


def test_stream_groups_events_into_few_transactions(client):
    acks = stream(client, [make_event() for _ in range(500)])
    stored = all_events(client)
    assert len(acks) == len(stored) == 500
    transactions = {(e.recorded_time.seconds, e.recorded_time.nanos) for e in stored}
    assert len(transactions) < 250


def test_stream_bad_event_gets_an_error_ack_and_the_stream_goes_on(client):
    first, second = make_event(), make_event()
    bad = audit_pb2.Event(id="x", source="/tests", dataschema="relative")
    acks = stream(client, [first, bad, second], 3)
    assert [a.sequence for a in acks] == [1, 0, 2]
    assert acks[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert set(violated_fields(acks[1].error)) == {"events[1].type", "events[1].dataschema"}


def test_stream_redelivery_is_acked_with_the_original_sequence(client):
    events = [make_event() for _ in range(20)]
    first = stream(client, events)
    second = stream(client, [*events[10:], make_event()])
    assert [a.sequence for a in second[:10]] == [a.sequence for a in first[10:]]
    assert all(a.duplicate for a in second[:10])
    assert second[10].sequence == 21 and not second[10].duplicate
    assert len(all_events(client)) == 21


def test_all_paths_at_once_keep_the_chain_gap_free(client):
    def unary():
        for _ in range(30):
            publish(client, make_event(source="/unary"))

    def batch():
        for _ in range(5):
            publish_batch(client, [make_event(source="/batch") for _ in range(20)])

    def streaming():
        stream(client, [make_event(source="/stream") for _ in range(200)], per_message=3)

    threads = [threading.Thread(target=f) for f in (unary, batch, streaming, streaming)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = all_events(client)
    assert [e.sequence for e in stored] == list(range(1, 531))
    assert all(b.previous_hash == a.hash for a, b in itertools.pairwise(stored))
    verdict = client.stub.VerifyLog(
        audit_pb2.VerifyLogRequest(), metadata=client.reader, timeout=30
    )
    assert verdict.intact and verdict.verified_count == 530


def test_ingest_needs_audit_write_and_reads_need_audit_read(client, signer):
    reader_only = [("authorization", "Bearer " + signer.mint(permissions=("audit:read",)))]
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.PublishEvent(
            audit_pb2.PublishEventRequest(event=make_event()), metadata=reader_only, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        list(
            client.stub.StreamEvents(
                iter([audit_pb2.StreamEventsRequest(events=[make_event()])]),
                metadata=reader_only,
                timeout=10,
            )
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.QueryEvents(audit_pb2.QueryEventsRequest(), metadata=client.writer, timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Nothing refused is stored; each refusal is recorded as the log's own event instead.
    stored = all_events(client)
    assert [(e.source, e.type, e.data["method"]) for e in stored] == [
        ("/audit", "audit.call.denied", "/audit.v1.AuditService/PublishEvent"),
        ("/audit", "audit.call.denied", "/audit.v1.AuditService/StreamEvents"),
        ("/audit", "audit.call.denied", "/audit.v1.AuditService/QueryEvents"),
        ("/audit", "audit.call.denied", "/audit.v1.AuditService/VerifyLog"),
    ]
