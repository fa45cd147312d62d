"""A real Audit process under kill -9 and SIGTERM.

kill -9 mid-stream loses no acked event and leaves the tree consistent with the checkpoint
signed before it; SIGTERM drains and exits 0.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest

from audit.v1 import audit_pb2, audit_pb2_grpc
from tests.support import rfc9162
from tests.support.audit import make_event
from tests.support.processes import ServiceProcess


def audit_process(data_dir: Path, jwks_file: Path) -> ServiceProcess:
    """The Audit Service on its own SQLite file, verifying tokens with a JWKS file."""
    return ServiceProcess("audit", data_dir, {"MESH_JWKS_FILE": str(jwks_file)})


def stub_for(port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, audit_pb2_grpc.AuditServiceStub(channel)


def stored_events(stub, metadata):
    found, token = [], ""
    while True:
        page = stub.QueryEvents(
            audit_pb2.QueryEventsRequest(source="/crash", page_size=1000, page_token=token),
            metadata=metadata,
            timeout=30,
        )
        found.extend(page.events)
        token = page.next_page_token
        if not token:
            return found


def test_acked_events_survive_sigkill_exactly_once(tmp_path, signer):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    writer = [("authorization", "Bearer " + signer.mint(permissions=("audit:write",)))]
    reader = [("authorization", "Bearer " + signer.mint(permissions=("audit:read",)))]
    sent = [make_event(source="/crash", data={"i": i}) for i in range(20_000)]

    killed = threading.Event()

    def requests():
        """Holds the second half back until the kill, so the server cannot finish first."""
        for i in range(0, 20_000, 5):
            if i == 2_000:
                killed.wait(timeout=120)
            yield audit_pb2.StreamEventsRequest(events=sent[i : i + 5])

    first = audit_process(tmp_path, jwks)
    channel, stub = stub_for(first.port)
    acks = []
    try:
        with pytest.raises(grpc.RpcError) as broken:
            for response in stub.StreamEvents(requests(), metadata=writer, timeout=120):
                acks.extend(response.acks)
                if len(acks) >= 500 and first.running:
                    signed = stub.CreateCheckpoint(
                        audit_pb2.CreateCheckpointRequest(), metadata=reader, timeout=30
                    )
                    first.kill()
                    killed.set()
        assert broken.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    finally:
        channel.close()
        if first.running:
            first.kill()
    assert 500 <= len(acks) < len(sent), "the stream must be cut in the middle"
    assert all(not a.HasField("error") for a in acks)

    second = audit_process(tmp_path, jwks)
    channel, stub = stub_for(second.port)
    try:
        stored = stored_events(stub, reader)
        by_id = {e.id: e for e in stored}
        assert len(by_id) == len(stored), "an event is stored twice"
        for ack in acks:
            assert by_id[ack.id].sequence == ack.sequence, f"acked event {ack.id} was lost"
        assert [e.sequence for e in stored] == list(range(1, len(stored) + 1))
        assert [e.id for e in stored] == [e.id for e in sent[: len(stored)]]
        verdict = stub.VerifyLog(
            audit_pb2.VerifyLogRequest(checkpoint=signed.note), metadata=reader, timeout=60
        )
        assert verdict.intact and verdict.verified_count == len(stored)
        assert signed.tree_size in verdict.checkpoint_tree_sizes
        after = stub.CreateCheckpoint(audit_pb2.CreateCheckpointRequest(), metadata=reader)
        assert after.tree_size == len(stored)  # the tree came back with the log, no rebuild
        proof = stub.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(
                first_tree_size=signed.tree_size, second_tree_size=after.tree_size
            ),
            metadata=reader,
        )
        assert rfc9162.verify_consistency(
            signed.tree_size,
            after.tree_size,
            signed.root_hash,
            after.root_hash,
            list(proof.hashes),
        )

        again = sent[: len(stored) + 100]
        redelivered = [
            ack
            for response in stub.StreamEvents(
                (
                    audit_pb2.StreamEventsRequest(events=again[i : i + 50])
                    for i in range(0, len(again), 50)
                ),
                metadata=writer,
                timeout=120,
            )
            for ack in response.acks
        ]
        assert all(a.duplicate for a in redelivered[: len(stored)])
        assert not any(a.duplicate for a in redelivered[len(stored) :])
        assert len(stored_events(stub, reader)) == len(stored) + 100
    finally:
        channel.close()
        second.kill()


def test_sigterm_drains_and_exits_cleanly(tmp_path, signer):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    writer = [("authorization", "Bearer " + signer.mint(permissions=("audit:write",)))]
    reader = [("authorization", "Bearer " + signer.mint(permissions=("audit:read",)))]
    sent = [make_event(source="/crash") for _ in range(50)]
    first = audit_process(tmp_path, jwks)
    channel, stub = stub_for(first.port)
    try:
        stub.PublishEvents(audit_pb2.PublishEventsRequest(events=sent), metadata=writer, timeout=30)
    finally:
        channel.close()
    assert first.terminate() == 0
    assert "signal received, draining" in first.messages()
    second = audit_process(tmp_path, jwks)
    channel, stub = stub_for(second.port)
    try:
        assert [e.id for e in stored_events(stub, reader)] == [e.id for e in sent]
    finally:
        channel.close()
        assert second.terminate() == 0
