"""The same Audit server on PostgreSQL: every ingest path, paging, subscribe and VerifyLog."""

from __future__ import annotations

import dataclasses
import threading

import grpc
import pytest

from audit.v1 import audit_pb2
from tests.support.audit import Client, make_event, start_audit
from tests.support.postgres import scratch_database

pytestmark = pytest.mark.postgres


def test_audit_on_postgres(settings, signer, verifier):
    with scratch_database("audit") as url:
        server = start_audit(dataclasses.replace(settings, database_url=url), verifier)
        try:
            with grpc.insecure_channel(server.target) as channel:
                client = Client(channel, signer)
                first = make_event(type="oms.branch.created")
                client.stub.PublishEvent(
                    audit_pb2.PublishEventRequest(event=first), metadata=client.writer, timeout=10
                )
                batch = [make_event(type="oms.schema.created") for _ in range(30)]
                results = client.stub.PublishEvents(
                    audit_pb2.PublishEventsRequest(events=[*batch, first]),
                    metadata=client.writer,
                    timeout=10,
                ).results
                assert [r.sequence for r in results] == [*range(2, 32), 1]
                assert results[-1].duplicate
                streamed = [make_event(type="oms.branch.merged") for _ in range(40)]
                acks = [
                    ack
                    for response in client.stub.StreamEvents(
                        iter(
                            audit_pb2.StreamEventsRequest(events=streamed[i : i + 8])
                            for i in range(0, 40, 8)
                        ),
                        metadata=client.writer,
                        timeout=10,
                    )
                    for ack in response.acks
                ]
                assert [a.sequence for a in acks] == list(range(32, 72))

                seen, token = [], ""
                while True:
                    page = client.stub.QueryEvents(
                        audit_pb2.QueryEventsRequest(
                            type="oms.branch.", order="newest", page_size=9, page_token=token
                        ),
                        metadata=client.reader,
                        timeout=10,
                    )
                    seen.extend(e.sequence for e in page.events)
                    token = page.next_page_token
                    if not token:
                        break
                assert seen == [*range(71, 31, -1), 1]

                subscription = client.stub.SubscribeEvents(
                    audit_pb2.SubscribeEventsRequest(type="oms.schema.", after_sequence=29),
                    metadata=client.reader,
                    timeout=10,
                )
                assert [next(subscription).sequence for _ in range(2)] == [30, 31]
                subscription.cancel()

                verdict = client.stub.VerifyLog(
                    audit_pb2.VerifyLogRequest(), metadata=client.reader, timeout=10
                )
                assert verdict.intact and verdict.verified_count == 71
        finally:
            server.stop()


def test_two_replicas_on_one_database_keep_one_gap_free_chain(settings, signer, verifier):
    """Two servers share a database and take concurrent streams, some events sent to both.

    The result is one gap-free chain with every event once, and a subscriber on one sees what the
    other stored.
    """
    with scratch_database("audit") as url:
        shared = dataclasses.replace(settings, database_url=url, subscribe_poll_seconds=0.2)
        replicas = [start_audit(shared, verifier)]
        replicas.append(start_audit(shared, verifier))
        channels = []
        try:
            for replica in replicas:
                channels.append(grpc.insecure_channel(replica.target))
            first, second = (Client(channel, signer) for channel in channels)
            both = [make_event() for _ in range(20)]
            sent = {
                0: [make_event() for _ in range(150)] + both,
                1: both + [make_event() for _ in range(150)],
            }
            subscription = first.stub.SubscribeEvents(
                audit_pb2.SubscribeEventsRequest(source="/tests"),
                metadata=first.reader,
                timeout=60,
            )
            acks: dict[int, list] = {}

            def stream(index, client):
                requests = (
                    audit_pb2.StreamEventsRequest(events=sent[index][i : i + 4])
                    for i in range(0, len(sent[index]), 4)
                )
                responses = client.stub.StreamEvents(requests, metadata=client.writer, timeout=60)
                acks[index] = [ack for response in responses for ack in response.acks]

            writers = [
                threading.Thread(target=stream, args=(i, c)) for i, c in enumerate((first, second))
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(60)
            assert all(not a.HasField("error") for a in acks[0] + acks[1])
            by_id = {a.id: a.sequence for a in acks[0]}
            assert all(by_id[a.id] == a.sequence for a in acks[1] if a.id in by_id)
            assert sorted({*by_id.values(), *(a.sequence for a in acks[1])}) == list(range(1, 321))
            followed = [next(subscription) for _ in range(320)]
            subscription.cancel()
            assert [e.sequence for e in followed] == list(range(1, 321))
            for client in (first, second):
                verdict = client.stub.VerifyLog(
                    audit_pb2.VerifyLogRequest(), metadata=client.reader, timeout=30
                )
                assert verdict.intact and verdict.verified_count == 320
        finally:
            for channel in channels:
                channel.close()
            for replica in replicas:
                replica.stop()
