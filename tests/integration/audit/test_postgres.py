"""The same Audit server on PostgreSQL: every ingest path, paging, subscribe and VerifyLog."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from audit.server import build_server
from audit.v1 import audit_pb2
from common.auth import NoRevocations, TokenVerifier
from tests.integration.audit.conftest import Client, make_event
from tests.support.postgres import scratch_database
from tests.support.tokens import AUDIENCE, ISSUER

pytestmark = pytest.mark.postgres


def test_audit_on_postgres(settings, signer):
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations()
    )
    with scratch_database("audit") as url:
        server = build_server(dataclasses.replace(settings, database_url=url), verifier)
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
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
            server.stop(0)
