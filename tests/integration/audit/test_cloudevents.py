"""CloudEvents 1.0 over a real server: optional time, the optional attributes, tracing."""

from __future__ import annotations

import hashlib

import grpc

from audit.v1 import audit_pb2
from common.canonical import canonical_json
from common.times import from_timestamp
from tests.support.audit import Subscriber, make_event
from tests.support.errors import reason, violated_fields

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ATTRIBUTES = {
    "datacontenttype": "application/json",
    "dataschema": "https://schemas.example.com/oms/branch.json",
    "traceparent": TRACEPARENT,
    "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
}


def publish(client, event):
    return client.stub.PublishEvent(
        audit_pb2.PublishEventRequest(event=event), metadata=client.writer, timeout=10
    )


def untimed(**fields):
    event = make_event(**fields)
    event.ClearField("time")
    return event


def test_an_event_without_time_is_recorded_at_the_time_received(client):
    stored = publish(client, untimed())
    assert stored.HasField("time")
    assert stored.time == stored.recorded_time
    assert client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=client.reader).intact


def test_an_event_without_time_sent_again_is_a_duplicate(client):
    event = untimed()
    first = publish(client, event)
    again = publish(client, event)
    assert again.sequence == first.sequence and again.time == first.time
    (ack,) = client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(events=[event]), metadata=client.writer, timeout=10
    ).results
    assert (ack.sequence, ack.duplicate) == (first.sequence, True)


def test_attributes_are_kept_and_returned_by_every_read(client):
    sent = make_event(specversion="1.0", **ATTRIBUTES)
    stored = publish(client, sent)
    fetched = client.stub.GetEvent(
        audit_pb2.GetEventRequest(name=stored.name), metadata=client.reader, timeout=10
    )
    (queried,) = client.stub.QueryEvents(
        audit_pb2.QueryEventsRequest(id=sent.id), metadata=client.reader, timeout=10
    ).events
    subscriber = Subscriber(client, after_sequence=stored.sequence - 1)
    try:
        (followed,) = subscriber.take(1)
    finally:
        subscriber.close()
    for read in (stored, fetched, queried, followed):
        assert read.specversion == "1.0"
        assert {name: getattr(read, name) for name in ATTRIBUTES} == ATTRIBUTES
        assert read.hash == stored.hash


def test_the_hash_covers_the_attributes_given(client):
    stored = publish(client, make_event(data={"k": "v"}, **ATTRIBUTES))
    documented = {
        "actor": stored.actor,
        "data": {"k": "v"},
        "id": stored.id,
        "previous_hash": stored.previous_hash,
        "recorded_time": from_timestamp(stored.recorded_time),
        "sequence": stored.sequence,
        "source": stored.source,
        "subject": stored.subject,
        "time": from_timestamp(stored.time),
        "type": stored.type,
        **ATTRIBUTES,
    }
    assert stored.hash == hashlib.sha256(canonical_json(documented).encode()).hexdigest()


def test_an_event_without_attributes_reads_as_1_0_with_none(client):
    stored = publish(client, make_event())
    assert stored.specversion == "1.0"
    assert [getattr(stored, name) for name in ATTRIBUTES] == [""] * 4


def test_a_redelivery_with_other_attributes_is_a_conflict(client):
    event = make_event()
    publish(client, event)
    event.traceparent = TRACEPARENT
    try:
        publish(client, event)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.ALREADY_EXISTS
        assert reason(exc) == "EVENT_ID_CONFLICT"
    else:
        raise AssertionError("a changed redelivery was accepted")


def test_malformed_attributes_are_refused_by_field(client):
    bad = make_event(
        specversion="0.3",
        datacontenttype="json",
        dataschema="not a uri",
        traceparent="00-zz",
        tracestate="A=1",
    )
    try:
        publish(client, bad)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(exc) == "INVALID_ARGUMENT"
        assert sorted(violated_fields(exc)) == [
            "event.datacontenttype",
            "event.dataschema",
            "event.specversion",
            "event.traceparent",
            "event.tracestate",
        ]
    else:
        raise AssertionError("malformed attributes were accepted")
    results = client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(events=[make_event(), make_event(dataschema="relative")]),
        metadata=client.writer,
        timeout=10,
    ).results
    assert results[0].sequence > 0
    assert violated_fields(results[1].error) == ["events[1].dataschema"]
