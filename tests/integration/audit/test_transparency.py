"""Checkpoints and proofs from a real Audit server, checked with RFC 9162 written out apart."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import sqlite3

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import timestamp_pb2

from audit import auditor, chain, convert
from audit.checkpoints import VerifierKey
from audit.v1 import audit_pb2
from tests.support import rfc9162
from tests.support.audit import Client, make_event, start_audit
from tests.support.errors import details, error_info
from tests.support.waiting import eventually

Kind = audit_pb2.LogBreak.Kind


def publish(client, count):
    for start in range(0, count, 100):
        client.stub.PublishEvents(
            audit_pb2.PublishEventsRequest(
                events=[make_event(data={"n": n}) for n in range(start, min(count, start + 100))]
            ),
            metadata=client.writer,
            timeout=10,
        )


def sign(client):
    return client.stub.CreateCheckpoint(
        audit_pb2.CreateCheckpointRequest(), metadata=client.reader, timeout=10
    )


def leaves(client, size):
    """Each event's leaf hash, recomputed here from the event as the log returns it."""
    api = auditor.Api(client.stub, client.reader)
    return [chain.leaf_hash(convert.stored_to_domain(e)) for e in api.events(1, size)]


def open_note(note, key):
    """Verify a checkpoint note by hand: C2SP signed-note, Ed25519, with the published key."""
    text, _, signature = note.partition("\n\n")
    dash, name, encoded = signature.rstrip("\n").split(" ")
    blob = base64.b64decode(encoded)
    assert dash == "—" and name == key.name
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x01" + key.public_key).digest()[:4]
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(blob[4:], (text + "\n").encode())
    origin, size, root = text.split("\n")
    return origin, int(size), base64.b64decode(root)


def verifier_key(client):
    return client.stub.GetVerifierKey(audit_pb2.GetVerifierKeyRequest(), timeout=10)


def test_checkpoints_verify_with_the_published_key_and_hold_the_rfc_root(client):
    key = verifier_key(client)  # no token needed
    assert key.verifier_key.startswith(key.name + "+")
    publish(client, 37)
    checkpoint = sign(client)
    origin, size, root = open_note(checkpoint.note, key)
    assert (origin, size, root) == (key.name, 37, checkpoint.root_hash)
    assert root == rfc9162.mth(leaves(client, 37))
    latest = client.stub.GetCheckpoint(
        audit_pb2.GetCheckpointRequest(name="checkpoints/latest"), metadata=client.reader
    )
    assert latest == checkpoint
    assert sign(client) == checkpoint  # nothing new: the same checkpoint, not another


def test_every_inclusion_and_consistency_proof_verifies_independently(client):
    sizes = [1, 2, 3, 5, 8, 13, 64, 100, 257, 300]
    checkpoints = {}
    for size in sizes:
        publish(client, size - (max(checkpoints) if checkpoints else 0))
        checkpoints[size] = sign(client)
    hashes = leaves(client, 300)
    chance = random.Random(3)
    for size, checkpoint in checkpoints.items():
        assert checkpoint.root_hash == rfc9162.mth(hashes[:size])
        for sequence in sorted({1, size, *chance.sample(range(1, size + 1), min(size, 8))}):
            proof = client.stub.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(name=f"events/{sequence}", tree_size=size),
                metadata=client.reader,
            )
            assert (proof.leaf_index, proof.tree_size) == (sequence - 1, size)
            leaf = chain.leaf_hash(convert.stored_to_domain(proof.event))
            assert rfc9162.verify_inclusion(
                sequence - 1, size, leaf, list(proof.hashes), checkpoint.root_hash
            )
    for first, second in [(a, b) for a in sizes for b in sizes if a <= b]:
        proof = client.stub.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(first_tree_size=first, second_tree_size=second),
            metadata=client.reader,
        )
        assert rfc9162.verify_consistency(
            first,
            second,
            checkpoints[first].root_hash,
            checkpoints[second].root_hash,
            list(proof.hashes),
        )


def test_checkpoints_are_listed_newest_first_a_page_at_a_time(client):
    for _ in range(5):
        publish(client, 1)
        sign(client)
    seen, token = [], ""
    while True:
        page = client.stub.ListCheckpoints(
            audit_pb2.ListCheckpointsRequest(page_size=2, page_token=token), metadata=client.reader
        )
        seen += [c.tree_size for c in page.checkpoints]
        token = page.next_page_token
        if not token:
            break
    assert seen == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("call", "request_", "reason", "code"),
    [
        ("GetCheckpoint", audit_pb2.GetCheckpointRequest(name="checkpoints/99"),
         "CHECKPOINT_NOT_FOUND", grpc.StatusCode.NOT_FOUND),
        ("GetCheckpoint", audit_pb2.GetCheckpointRequest(name="checkpoints/newest"),
         "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
        ("GetInclusionProof", audit_pb2.GetInclusionProofRequest(name="events/4", tree_size=3),
         "SEQUENCE_OUT_OF_RANGE", grpc.StatusCode.OUT_OF_RANGE),
        ("GetInclusionProof", audit_pb2.GetInclusionProofRequest(name="events/1", tree_size=9),
         "TREE_SIZE_OUT_OF_RANGE", grpc.StatusCode.OUT_OF_RANGE),
        ("GetInclusionProof", audit_pb2.GetInclusionProofRequest(name="events/0"),
         "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
        ("GetConsistencyProof",
         audit_pb2.GetConsistencyProofRequest(first_tree_size=3, second_tree_size=2),
         "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
        ("GetConsistencyProof", audit_pb2.GetConsistencyProofRequest(second_tree_size=2),
         "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
        ("VerifyLog", audit_pb2.VerifyLogRequest(checkpoint="not a note"),
         "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)  # fmt: skip
def test_bad_requests_get_clear_errors(client, call, request_, reason, code):
    publish(client, 3)
    with pytest.raises(grpc.RpcError) as caught:
        getattr(client.stub, call)(request_, metadata=client.reader, timeout=10)
    assert caught.value.code() == code
    assert error_info(caught.value).reason == reason


def test_proofs_and_checkpoints_need_audit_read(client):
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.CreateCheckpoint(audit_pb2.CreateCheckpointRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.GetCheckpoint(
            audit_pb2.GetCheckpointRequest(name="checkpoints/latest"),
            metadata=client.writer,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
def fast_settings(settings):
    return dataclasses.replace(settings, checkpoint_seconds=0.2)


def test_a_checkpoint_follows_commits_without_being_asked(fast_settings, verifier, signer):
    server = start_audit(fast_settings, verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            publish(client, 3)
            listed = eventually(
                lambda: (
                    client.stub.ListCheckpoints(
                        audit_pb2.ListCheckpointsRequest(), metadata=client.reader
                    ).checkpoints
                ),
                what="a checkpoint of the new events",
            )
            assert listed[0].tree_size == 3
    finally:
        server.stop()


# --- a log rewritten behind the service's back -------------------------------------------


@pytest.fixture
def sql(settings):
    """SQL on the service's SQLite file, as an intruder with write access to it would run."""
    path = settings.database_url.removeprefix("sqlite:///")

    def run(*statements):
        with sqlite3.connect(path) as conn:
            for statement, *params in statements:
                conn.execute(statement, params)

    return run


def truncate(sql, keep):
    """Delete every event after ``keep``, rewind the head, drop the later checkpoints."""
    sql(
        ("DELETE FROM events WHERE sequence > ?", keep),
        (
            "UPDATE chain_head SET sequence = ?, hash = COALESCE("
            "(SELECT hash FROM events WHERE sequence = ?), ?)",
            keep,
            keep,
            chain.GENESIS,
        ),
        ("DELETE FROM checkpoints WHERE tree_size > ?", keep),
    )


@pytest.fixture
def remembered(client, tmp_path):
    """A log of 40 events whose checkpoint a witness has verified and remembers."""
    publish(client, 40)
    sign(client)
    state = tmp_path / "witness.json"
    api = auditor.Api(client.stub, client.reader)
    auditor.witness(api, state, pin=verifier_key(client).verifier_key)
    return api, state, sign(client)


def verify_with(client, checkpoint):
    return client.stub.VerifyLog(
        audit_pb2.VerifyLogRequest(checkpoint=checkpoint.note), metadata=client.reader, timeout=30
    )


def test_an_intact_log_passes_the_witness_and_verify_log(client, remembered):
    api, state, checkpoint = remembered
    publish(client, 5)
    assert auditor.witness(api, state, pin=None).size == 40  # the newest signed so far
    sign(client)
    assert auditor.witness(api, state, pin=None).size == 45
    result = verify_with(client, checkpoint)
    assert result.intact and 40 in result.checkpoint_tree_sizes


@pytest.mark.parametrize("cut", [1, 10, 39])
def test_a_truncated_tail_is_caught(client, remembered, sql, cut):
    api, state, checkpoint = remembered
    truncate(sql, 40 - cut)
    result = verify_with(client, checkpoint)
    assert not result.intact and result.first_break.kind == Kind.KIND_TRUNCATED
    with pytest.raises(auditor.Evidence):
        auditor.witness(api, state, pin=None)


def test_a_truncated_log_that_grows_back_is_caught(client, remembered, sql):
    checkpoint = remembered[2]
    truncate(sql, 30)
    publish(client, 15)
    result = verify_with(client, checkpoint)
    assert not result.intact and result.first_break.kind == Kind.KIND_CHECKPOINT_MISMATCH
    with pytest.raises(grpc.RpcError) as refused:  # the log will not sign the new history
        sign(client)
    assert error_info(refused.value).reason == "LOG_INCONSISTENT"


@pytest.mark.parametrize("sequence", [1, 17, 40])
def test_an_edited_or_deleted_event_is_caught(client, remembered, sql, sequence):
    api, state, checkpoint = remembered
    sql(("UPDATE events SET actor = 'mallory' WHERE sequence = ?", sequence))
    assert not verify_with(client, checkpoint).intact
    with pytest.raises(auditor.Evidence, match="changed"):
        auditor.witness(api, state, pin=None)
    sql(("DELETE FROM events WHERE sequence = ?", sequence))
    assert not verify_with(client, checkpoint).intact
    with pytest.raises(auditor.Evidence):
        auditor.witness(api, state, pin=None)


def test_a_rewrite_signed_after_the_log_forgot_is_caught_by_the_witness(
    settings, verifier, signer, tmp_path, sql
):
    """An intruder who also deletes the log's own memory of its last checkpoint."""
    server = start_audit(settings, verifier)
    state = tmp_path / "witness.json"
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            publish(client, 20)
            sign(client)
            auditor.witness(
                auditor.Api(client.stub, client.reader),
                state,
                pin=verifier_key(client).verifier_key,
            )
    finally:
        server.stop()
    truncate(sql, 12)
    memory = settings.log_key_file.with_name(f"{settings.log_key_file.stem}.last-checkpoint")
    memory.unlink()
    server = start_audit(settings, verifier)
    try:
        with grpc.insecure_channel(server.target) as channel:
            client = Client(channel, signer)
            publish(client, 20)
            assert sign(client).tree_size == 32  # a consistent-looking log of its own
            api = auditor.Api(client.stub, client.reader)
            with pytest.raises(auditor.Evidence, match="not consistent"):
                auditor.witness(api, state, pin=None, replay=False)
    finally:
        server.stop()


def test_an_export_verifies_offline_and_a_changed_line_does_not(client, tmp_path):
    publish(client, 24)
    with_attributes = make_event(
        subject="",
        datacontenttype="application/json",
        dataschema="https://schemas.example/oms/v1",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate="vendor=1",
    )
    with_attributes.ClearField("time")  # stored with its recorded time
    client.stub.PublishEvent(
        audit_pb2.PublishEventRequest(event=with_attributes), metadata=client.writer, timeout=10
    )
    api = auditor.Api(client.stub, client.reader)
    path = tmp_path / "export.jsonl"
    with open(path, "w") as out:
        auditor.export(api, 5, 25, out)
    key = VerifierKey.parse(verifier_key(client).verifier_key)
    with open(path) as lines:
        checkpoint, count = auditor.verify_export(lines, key)
    assert (checkpoint.size, count) == (25, 21)
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 22
    assert '"traceparent": "00-4bf92f' in lines[-1] and '"subject"' not in lines[-1]
    for index, change in [(3, ('"n": ', '"n": 1')), (9, ('"actor": "', '"actor": "x'))]:
        tampered = tmp_path / f"tampered-{index}.jsonl"
        tampered.write_text(
            "".join([*lines[:index], lines[index].replace(*change), *lines[index + 1 :]])
        )
        with open(tampered) as changed, pytest.raises(auditor.Evidence, match=f"line {index + 1}"):
            auditor.verify_export(changed, key)
    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("".join([*lines[:5], *lines[6:]]))
    with open(dropped) as changed, pytest.raises(auditor.Evidence):
        auditor.verify_export(changed, key)


def test_a_checkpoint_that_lost_its_final_newline_is_still_the_checkpoint(client):
    publish(client, 3)
    note = sign(client).note
    result = client.stub.VerifyLog(
        audit_pb2.VerifyLogRequest(checkpoint=note.rstrip("\n")), metadata=client.reader
    )
    assert result.intact and list(result.checkpoint_tree_sizes) == [3]


def test_checkpoints_are_listed_by_the_time_they_were_signed(client):
    publish(client, 1)
    first = sign(client)
    publish(client, 1)
    second = sign(client)

    def sizes(**window):
        request = audit_pb2.ListCheckpointsRequest(**window)
        return [
            c.tree_size
            for c in client.stub.ListCheckpoints(request, metadata=client.reader).checkpoints
        ]

    assert sizes(start_time=second.create_time) == [2]
    assert sizes(end_time=second.create_time) == [1]
    assert sizes(start_time=first.create_time, end_time=second.create_time) == [1]
    token = client.stub.ListCheckpoints(
        audit_pb2.ListCheckpointsRequest(page_size=1), metadata=client.reader
    ).next_page_token
    with pytest.raises(grpc.RpcError) as caught:  # a token is bound to its time window
        client.stub.ListCheckpoints(
            audit_pb2.ListCheckpointsRequest(page_token=token, start_time=first.create_time),
            metadata=client.reader,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("seconds", [2**40, -(2**40)])
def test_a_checkpoint_window_past_what_the_log_can_compare_is_out_of_range(client, seconds):
    start, end = (timestamp_pb2.Timestamp(seconds=seconds + i) for i in (0, 1))
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.ListCheckpoints(
            audit_pb2.ListCheckpointsRequest(start_time=start, end_time=end),
            metadata=client.reader,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = details(caught.value)["BadRequest"]
    assert sorted((v.field, v.reason) for v in bad.field_violations) == [
        ("end_time", "OUT_OF_RANGE"),
        ("start_time", "OUT_OF_RANGE"),
    ]
