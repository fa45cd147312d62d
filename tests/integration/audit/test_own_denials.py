"""The Audit Service records the calls it refuses in its own log, source ``/audit``.

Through the same ingest and hash chain as every other event, and at a bounded rate: a flood of
refused calls is counted into a few events, not written one by one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from audit import auditor
from audit.v1 import audit_pb2
from tests.support.audit import Client, make_event, start_audit
from tests.support.waiting import eventually

FORWARDED = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")]
"""What Envoy sends on: a client's own entry, then the address Envoy accepted."""
PUBLISH = "/audit.v1.AuditService/PublishEvent"
VERIFY = "/audit.v1.AuditService/VerifyLog"


def _denied(client: Client) -> list[dict[str, Any]]:
    page = client.stub.QueryEvents(
        audit_pb2.QueryEventsRequest(type="audit.call.denied", page_size=1000),
        metadata=client.reader,
        timeout=10,
    )
    return [json_format.MessageToDict(e, preserving_proto_field_name=True) for e in page.events]


def test_refused_ingest_and_reads_are_recorded_with_caller_and_address(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.PublishEvent(
            audit_pb2.PublishEventRequest(event=make_event()),
            metadata=client.reader + FORWARDED,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=client.writer, timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    events = _denied(client)
    assert [(e["source"], e["subject"], e["actor"]) for e in events] == [
        ("/audit", f"rpcs{PUBLISH}", "alice"),
        ("/audit", f"rpcs{VERIFY}", "alice"),
    ]
    assert [
        (e["data"]["code"], e["data"]["reason"], e["data"]["client_address"]) for e in events
    ] == [
        ("PERMISSION_DENIED", "MISSING_PERMISSION", "198.51.100.7"),
        ("PERMISSION_DENIED", "MISSING_PERMISSION", "127.0.0.1"),
    ]
    verdict = client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=client.reader)
    assert verdict.intact and verdict.verified_count == 2


def test_its_own_events_verify_from_outside_as_every_other_does(client: Client, tmp_path) -> None:
    """A reader recomputes each hash from the event as read back (numbers as doubles)."""
    with pytest.raises(grpc.RpcError):
        client.stub.VerifyLog(audit_pb2.VerifyLogRequest(), metadata=client.writer, timeout=10)
    assert _denied(client)[0]["data"]["count"] == 1.0
    key = client.stub.GetVerifierKey(audit_pb2.GetVerifierKeyRequest()).verifier_key
    client.stub.CreateCheckpoint(audit_pb2.CreateCheckpointRequest(), metadata=client.reader)
    api = auditor.Api(client.stub, client.reader)
    assert auditor.witness(api, tmp_path / "witness.json", pin=key).size == 1


def test_an_unauthenticated_flood_is_counted_into_two_events(
    settings: Any, verifier: Any, signer: Any
) -> None:
    # Longer than the flood takes on a busy machine: a window that closed mid-flood would
    # rightly split its count.
    runtime = dataclasses.replace(settings.runtime, denial_window_seconds=3.0)
    server = start_audit(dataclasses.replace(settings, runtime=runtime), verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            request = audit_pb2.PublishEventRequest(event=make_event())
            for _ in range(200):
                with pytest.raises(grpc.RpcError) as caught:
                    client.stub.PublishEvent(request, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            eventually(lambda: len(_denied(client)) == 2, what="the window's count")
            events = _denied(client)
            assert [(e.get("actor", ""), e["data"]["count"]) for e in events] == [
                ("", 1.0),
                ("", 199.0),
            ]
            assert {e["data"]["reason"] for e in events} == {"TOKEN_MISSING"}
    finally:
        server.stop()
