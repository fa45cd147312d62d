"""SubscribeEvents over a real server: replay from a sequence, then live, no gap, no repeat."""

from __future__ import annotations

import dataclasses
import threading

import grpc
import pytest

from audit.v1 import audit_pb2
from tests.support.audit import Client, Subscriber, make_event, start_audit
from tests.support.errors import error_info, violated_fields
from tests.support.waiting import eventually


def publish_many(client, events):
    for start in range(0, len(events), 20):
        client.stub.PublishEvents(
            audit_pb2.PublishEventsRequest(events=events[start : start + 20]),
            metadata=client.writer,
            timeout=10,
        )


def test_replay_then_live_without_gap_or_repeat(client):
    publish_many(client, [make_event() for _ in range(100)])
    subscriber = Subscriber(client, after_sequence=0)
    writer = threading.Thread(
        target=publish_many, args=(client, [make_event() for _ in range(300)])
    )
    writer.start()
    try:
        events = subscriber.take(400)
        writer.join(30)
        late = make_event()
        client.stub.PublishEvent(
            audit_pb2.PublishEventRequest(event=late), metadata=client.writer, timeout=10
        )
        events += subscriber.take(1)
    finally:
        subscriber.close()
    assert [e.sequence for e in events] == list(range(1, 402))
    assert events[-1].id == late.id
    assert subscriber.received.empty() or isinstance(subscriber.received.get(), grpc.RpcError)


def test_filtered_subscription_resumes_after_a_sequence(client):
    branch = [make_event(type="oms.branch.created") for _ in range(5)]
    schema = [make_event(type="oms.schema.created") for _ in range(5)]
    publish_many(client, [e for pair in zip(branch, schema, strict=True) for e in pair])
    subscriber = Subscriber(client, type="oms.branch.", after_sequence=3)
    try:
        replayed = subscriber.take(3)
        live = make_event(type="oms.branch.merged")
        publish_many(client, [make_event(type="oms.schema.deleted"), live])
        (followed,) = subscriber.take(1)
    finally:
        subscriber.close()
    assert [e.id for e in replayed] == [e.id for e in branch[2:]]
    assert [e.sequence for e in replayed] == [5, 7, 9]
    assert followed.id == live.id and followed.sequence == 12


def test_bad_subscription_is_refused(client):
    subscriber = Subscriber(client, type="Bad Type", after_sequence=-1)
    with pytest.raises(grpc.RpcError) as caught:
        subscriber.take(1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def one_slot(settings, signer, verifier):
    """A client of a server admitting one subscription at a time, with one event logged.

    Its subscribers look at the log only when woken, never on their own.
    """
    limited = dataclasses.replace(
        settings,
        subscribe_poll_seconds=600,
        runtime=dataclasses.replace(settings.runtime, max_streams=1),
    )
    server = start_audit(limited, verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            client.stub.PublishEvent(
                audit_pb2.PublishEventRequest(event=make_event()),
                metadata=client.writer,
                timeout=10,
            )
            yield client
    finally:
        server.stop()


def test_subscriptions_are_limited(one_slot):
    first = Subscriber(one_slot)
    assert first.take(1)[0].sequence == 1
    second = Subscriber(one_slot)
    with pytest.raises(grpc.RpcError) as caught:
        second.take(1)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.close()


def test_a_cancelled_subscription_frees_its_slot_at_once(one_slot):
    """The only slot is taken, the subscriber leaves while idle, and another one gets in.

    It gets in long before the subscriber would next have looked at the log on its own.
    """
    first = Subscriber(one_slot)
    assert first.take(1)[0].sequence == 1
    first.close()
    admitted = []

    def admitted_now():
        subscriber = Subscriber(one_slot)
        try:
            admitted.extend(subscriber.take(1))
            return True
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return False
        finally:
            subscriber.close()

    eventually(admitted_now, timeout=30)
    assert admitted[0].sequence == 1


def test_a_subscription_answers_its_headers_before_any_event(client):
    """Through the gateway this is what tells an SSE client its subscription is open."""
    call = client.stub.SubscribeEvents(
        audit_pb2.SubscribeEventsRequest(subject="nothing/matches"),
        metadata=client.reader,
        timeout=10,
    )
    try:
        assert call.initial_metadata() is not None
        assert call.is_active()
    finally:
        call.cancel()


def test_stopping_the_server_ends_subscriptions_cleanly_at_the_start_of_the_drain(
    settings, verifier, client_factory
):
    """Open subscriptions end OK when draining starts.

    Otherwise they would hold the drain for the whole grace period and then be cancelled.
    """
    server = start_audit(settings, verifier)
    client = client_factory(server.port)
    subscriber = Subscriber(client, after_sequence=0)
    publish_many(client, [make_event()])
    subscriber.take(1)
    stopper = threading.Thread(target=server.stop, args=(60,))
    stopper.start()
    subscriber.thread.join(30)
    assert not subscriber.thread.is_alive()
    assert subscriber.call.code() == grpc.StatusCode.OK
    stopper.join(30)
    assert not stopper.is_alive()


def test_a_subscriber_that_falls_behind_is_ended_with_where_to_resume(settings, verifier, signer):
    """It stops reading while thousands of events commit: the server keeps only a few for it.

    The server ends it with RESOURCE_EXHAUSTED once it reads again, and the others are not held
    up.
    """
    small = dataclasses.replace(
        settings,
        max_batch=16,
        runtime=dataclasses.replace(settings.runtime, stream_buffer=32),
    )
    server = start_audit(small, verifier)
    try:
        with (
            grpc.insecure_channel(server.target) as slow_channel,
            grpc.insecure_channel(server.target) as channel,
        ):
            reader = Client(slow_channel, signer)
            slow = reader.stub.SubscribeEvents(
                audit_pb2.SubscribeEventsRequest(), metadata=reader.reader, timeout=120
            )
            assert slow.initial_metadata() is not None  # subscribed, and not reading
            client = Client(channel, signer)
            keeping_up = Subscriber(client)
            bulky = {"padding": "x" * 8000}
            published = 0
            for _ in range(60):  # megabytes: far past what the transport buffers for it
                publish_many(client, [make_event(data=bulky) for _ in range(16)])
                published += 16
                # Read as it goes: the one that keeps up must not fall behind on a busy machine.
                assert len(keeping_up.take(16)) == 16
            keeping_up.close()
            received = []
            with pytest.raises(grpc.RpcError) as caught:
                for event in slow:
                    received.append(event.sequence)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert len(received) < published
            assert received == list(range(1, len(received) + 1))  # what it got, it got in order
            info = error_info(caught.value)
            assert info.reason == "STREAM_TOO_SLOW"
            assert int(info.metadata["after_sequence"]) == received[-1]
    finally:
        server.stop()


def _opened(client, metadata, count, **request):
    """The first ``count`` events of a subscription opened with ``metadata``."""
    call = client.stub.SubscribeEvents(
        audit_pb2.SubscribeEventsRequest(**request), metadata=metadata, timeout=10
    )
    try:
        return [next(call) for _ in range(count)]
    finally:
        call.cancel()


def test_last_event_id_resumes_after_it_and_wins_over_after_sequence(client):
    publish_many(client, [make_event() for _ in range(6)])
    subscriber = Subscriber(client, after_sequence=1)
    try:
        seen = subscriber.take(3)
    finally:
        subscriber.close()
    assert [e.sequence for e in seen] == [2, 3, 4]
    resumed = _opened(
        client,
        [*client.reader, ("last-event-id", str(seen[-1].sequence))],
        2,
        after_sequence=1,  # the URL a browser reconnects to is the one it first opened
    )
    assert [e.sequence for e in resumed] == [5, 6]


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "99999999999999999999"])
def test_a_malformed_last_event_id_is_refused(client, bad):
    with pytest.raises(grpc.RpcError) as caught:
        _opened(client, [*client.reader, ("last-event-id", bad)], 1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["Last-Event-ID"]
