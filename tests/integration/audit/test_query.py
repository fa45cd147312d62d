"""QueryEvents and GetEvent over a real server: filters, order, paging under concurrent ingest."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2

from audit.v1 import audit_pb2
from tests.support.audit import make_event
from tests.support.errors import reason, violated_fields

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def query(client, **fields):
    return client.stub.QueryEvents(
        audit_pb2.QueryEventsRequest(**fields), metadata=client.reader, timeout=10
    )


def ids(page):
    return [e.id for e in page.events]


def ts(moment):
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture
def seeded(client):
    rows = [
        ("a", "/oms", "oms.branch.created", "branches/main", "alice", 0),
        ("b", "/oms", "oms.branch.merged", "branches/main", "bob", 1),
        ("c", "/oms", "oms.schema.created", "object-types/Person", "alice", 2),
        ("d", "/users", "users.auth.login_succeeded", "users/1", "alice", 3),
        ("e", "/oms", "oms.branchy.created", "branches/x", "carol", 4),
        ("f", "/oms", "oms.branch.deleted", "branches/dev", "bob", 5),
    ]
    client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(
            events=[
                make_event(
                    id=i, source=s, type=t, subject=subj, actor=a, time=T0 + timedelta(hours=h)
                )
                for i, s, t, subj, a, h in rows
            ]
        ),
        metadata=client.writer,
        timeout=10,
    )
    return client


def test_filters(seeded):
    assert ids(query(seeded)) == ["a", "b", "c", "d", "e", "f"]
    assert ids(query(seeded, type="oms.branch.created")) == ["a"]
    assert ids(query(seeded, type="oms.branch.")) == ["a", "b", "f"]
    assert ids(query(seeded, type="oms.")) == ["a", "b", "c", "e", "f"]
    assert ids(query(seeded, source="/users")) == ["d"]
    assert ids(query(seeded, subject="branches/main")) == ["a", "b"]
    assert ids(query(seeded, actor="bob")) == ["b", "f"]
    assert ids(query(seeded, id="c")) == ["c"]
    window = query(
        seeded, start_time=ts(T0 + timedelta(hours=1)), end_time=ts(T0 + timedelta(hours=3))
    )
    assert ids(window) == ["b", "c"]
    assert ids(query(seeded, type="oms.branch.", actor="bob", order="newest")) == ["f", "b"]
    assert ids(query(seeded, type="oms.nothing.")) == []


def test_newest_first_and_paging_both_ways(seeded):
    assert ids(query(seeded, order="newest")) == ["f", "e", "d", "c", "b", "a"]
    for order, expected in (("oldest", "abcdef"), ("newest", "fedcba")):
        seen, token = [], ""
        while True:
            page = query(seeded, order=order, page_size=4, page_token=token)
            assert len(page.events) <= 4
            seen.extend(ids(page))
            token = page.next_page_token
            if not token:
                break
        assert "".join(seen) == expected


def test_page_token_is_bound_to_its_filter_and_validated(seeded):
    token = query(seeded, type="oms.branch.", page_size=1).next_page_token
    assert token
    for bad in ({"type": "oms.schema.", "page_token": token}, {"page_token": "garbage!"}):
        with pytest.raises(grpc.RpcError) as caught:
            query(seeded, **bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violated_fields(caught.value)) == {"page_token"}


def test_bad_query_reports_every_violation(seeded):
    with pytest.raises(grpc.RpcError) as caught:
        query(
            seeded,
            type="Oms Branch",
            order="sideways",
            page_size=-1,
            start_time=ts(T0),
            end_time=ts(T0 - timedelta(seconds=1)),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(caught.value)) == {
        "type",
        "order",
        "page_size",
        "end_time",
    }
    with pytest.raises(grpc.RpcError) as caught:
        query(seeded, start_time=ts(datetime(9999, 1, 1, tzinfo=UTC)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(caught.value)) == {"start_time"}


def test_get_event_by_name(seeded):
    event = seeded.stub.GetEvent(
        audit_pb2.GetEventRequest(name="events/3"), metadata=seeded.reader, timeout=10
    )
    assert (event.id, event.sequence) == ("c", 3)
    with pytest.raises(grpc.RpcError) as caught:
        seeded.stub.GetEvent(
            audit_pb2.GetEventRequest(name="events/99"), metadata=seeded.reader, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(caught.value) == "EVENT_NOT_FOUND"
    for bad in ("events/x", "things/3", "events/0", "", "events/" + "9" * 30, "events/\u0663"):
        with pytest.raises(grpc.RpcError) as caught:
            seeded.stub.GetEvent(
                audit_pb2.GetEventRequest(name=bad), metadata=seeded.reader, timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("order", ["oldest", "newest"])
def test_paging_while_events_are_added_misses_and_repeats_nothing(client, order):
    before = [make_event(type="oms.schema.updated") for _ in range(150)]
    client.stub.PublishEvents(
        audit_pb2.PublishEventsRequest(events=before), metadata=client.writer, timeout=10
    )
    stop = threading.Event()
    added = []

    def ingest():
        while not stop.is_set() and len(added) < 2000:
            batch = [make_event(type="oms.schema.updated") for _ in range(10)]
            client.stub.PublishEvents(
                audit_pb2.PublishEventsRequest(events=batch), metadata=client.writer, timeout=10
            )
            added.extend(e.id for e in batch)
            batch = [make_event(type="oms.branch.created") for _ in range(5)]
            client.stub.PublishEvents(
                audit_pb2.PublishEventsRequest(events=batch), metadata=client.writer, timeout=10
            )

    writer = threading.Thread(target=ingest)
    writer.start()
    seen, token, pages = [], "", 0
    try:
        while pages < 1000:
            page = query(client, type="oms.schema.", order=order, page_size=7, page_token=token)
            seen.extend(page.events)
            token = page.next_page_token
            pages += 1
            if not token:
                break
    finally:
        stop.set()
        writer.join(30)
    sequences = [e.sequence for e in seen]
    assert len(sequences) == len(set(sequences)), "an event was repeated"
    assert all(e.type == "oms.schema.updated" for e in seen)
    assert sequences == sorted(sequences, reverse=order == "newest")
    seen_ids = {e.id for e in seen}
    assert {e.id for e in before} <= seen_ids, "an event stored before paging began was missed"
    if order == "oldest":
        # Paging in log order also reaches everything committed before the last page was read.
        last = sequences[-1]
        everything, token = [], ""
        while True:
            page = query(client, type="oms.schema.", page_size=1000, page_token=token)
            everything.extend(e.id for e in page.events if e.sequence <= last)
            token = page.next_page_token
            if not token:
                break
        assert everything == [e.id for e in seen]


def test_a_page_of_large_events_stops_at_its_byte_bound_and_the_next_goes_on(client):
    """Events of up to 64 KiB each: a thousand would outgrow a client's 4 MiB receive limit."""
    sent = [
        make_event(source="/large", data={"blob": f"{n:04d}" + "x" * 50_000}) for n in range(100)
    ]
    for start in range(0, 100, 25):
        client.stub.PublishEvents(
            audit_pb2.PublishEventsRequest(events=sent[start : start + 25]),
            metadata=client.writer,
            timeout=30,
        )
    seen, sizes, token = [], [], ""
    while True:
        page = query(client, source="/large", page_size=1000, page_token=token)
        assert page.ByteSize() < 2 * 1024 * 1024 + 60_000
        sizes.append(len(page.events))
        seen.extend(ids(page))
        token = page.next_page_token
        if not token:
            break
    assert len(sizes) == 3 and sizes[0] == sizes[1] > 30  # about 41 events fill 2 MiB
    assert seen == [e.id for e in sent]
