"""Translation between the ``audit.v1`` messages and the log's domain records.

Struct values become plain Python with NaN kept, so validation (:func:`audit.events.
parse_event`) can refuse it by field instead of the conversion failing first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import struct_pb2

from audit import ingest
from audit.attributes import SPEC_VERSION
from audit.checkpoints import Checkpoint
from audit.events import Event, EventFilter, Recorded, StoredEvent, parse_event
from audit.transparency import InclusionProof
from audit.v1 import audit_pb2
from audit.verification import Verification
from common.canonical import canonical_json
from common.errors import MeshError
from common.status import status_proto
from common.times import from_timestamp, to_timestamp

_KINDS = {
    "HASH_MISMATCH": audit_pb2.LogBreak.KIND_HASH_MISMATCH,
    "PREVIOUS_HASH_MISMATCH": audit_pb2.LogBreak.KIND_PREVIOUS_HASH_MISMATCH,
    "SEQUENCE_MISSING": audit_pb2.LogBreak.KIND_SEQUENCE_MISSING,
    "HEAD_MISMATCH": audit_pb2.LogBreak.KIND_HEAD_MISMATCH,
    "CHECKPOINT_MISMATCH": audit_pb2.LogBreak.KIND_CHECKPOINT_MISMATCH,
    "TRUNCATED": audit_pb2.LogBreak.KIND_TRUNCATED,
    "TREE_MISMATCH": audit_pb2.LogBreak.KIND_TREE_MISMATCH,
}


def _plain(value: struct_pb2.Value) -> Any:
    """A Struct value as plain Python, NaN kept so validation can refuse it by field."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _fields(value.struct_value)
    if kind == "list_value":
        return [_plain(item) for item in value.list_value.values]
    return None


def _fields(struct: struct_pb2.Struct) -> dict[str, Any]:
    fields = struct.fields  # by key, not items(): a protobuf map iterates keys in C
    return {key: _plain(fields[key]) for key in fields}


def event_to_domain(message: audit_pb2.Event, field_prefix: str) -> Event:
    return parse_event(
        id=message.id,
        source=message.source,
        type=message.type,
        subject=message.subject,
        time_ns=from_timestamp(message.time) if message.HasField("time") else None,
        actor=message.actor,
        data=_fields(message.data),
        specversion=message.specversion,
        datacontenttype=message.datacontenttype,
        dataschema=message.dataschema,
        traceparent=message.traceparent,
        tracestate=message.tracestate,
        field_prefix=field_prefix,
    )


def event_to_message(stored: StoredEvent) -> audit_pb2.Event:
    event = stored.event
    data = struct_pb2.Struct()
    data.update(json.loads(event.data))
    return audit_pb2.Event(
        name=f"events/{stored.sequence}",
        id=event.id,
        source=event.source,
        type=event.type,
        subject=event.subject,
        time=to_timestamp(stored.time_ns),
        actor=event.actor,
        data=data,
        sequence=stored.sequence,
        recorded_time=to_timestamp(stored.recorded_ns),
        hash=stored.hash,
        previous_hash=stored.previous_hash,
        specversion=SPEC_VERSION,
        datacontenttype=event.datacontenttype,
        dataschema=event.dataschema,
        traceparent=event.traceparent,
        tracestate=event.tracestate,
    )


def stored_to_domain(message: audit_pb2.Event) -> StoredEvent:
    """A stored event as a client received it, for checking its hash and its leaf."""
    return StoredEvent(
        event=Event(
            id=message.id,
            source=message.source,
            type=message.type,
            subject=message.subject,
            time_ns=from_timestamp(message.time),
            actor=message.actor,
            data=canonical_json(_fields(message.data)),
            datacontenttype=message.datacontenttype,
            dataschema=message.dataschema,
            traceparent=message.traceparent,
            tracestate=message.tracestate,
        ),
        sequence=message.sequence,
        recorded_ns=from_timestamp(message.recorded_time),
        previous_hash=message.previous_hash,
        hash=message.hash,
    )


def add_acks(
    acks: Any, outcomes: Iterable[tuple[audit_pb2.Event, Recorded | MeshError]], *, domain: str
) -> None:
    """Append an ack per outcome to the repeated field ``acks``.

    Each is built in place: cheaper than building each ack and copying it in.
    """
    add = acks.add
    for message, outcome in outcomes:
        if isinstance(outcome, MeshError):
            add(id=message.id, source=message.source, error=status_proto(outcome, domain=domain))
        else:
            add(
                id=message.id,
                source=message.source,
                sequence=outcome.stored.sequence,
                duplicate=outcome.duplicate,
            )


def filter_to_domain(
    request: audit_pb2.QueryEventsRequest | audit_pb2.SubscribeEventsRequest,
) -> EventFilter:
    if isinstance(request, audit_pb2.SubscribeEventsRequest):
        return EventFilter(
            type=request.type, source=request.source, subject=request.subject, actor=request.actor
        )
    return EventFilter(
        type=request.type,
        source=request.source,
        subject=request.subject,
        actor=request.actor,
        id=request.id,
        start_ns=from_timestamp(request.start_time) if request.HasField("start_time") else None,
        end_ns=from_timestamp(request.end_time) if request.HasField("end_time") else None,
        start_sequence=request.start_sequence,
        end_sequence=request.end_sequence,
    )


def _parse_or_error(message: audit_pb2.Event, field_prefix: str) -> Event | MeshError:
    try:
        return event_to_domain(message, field_prefix)
    except MeshError as exc:
        return exc


def parsing(events: Sequence[audit_pb2.Event]) -> ingest.Prepare:
    """Validation of a batch, for the ingestor to run where it commits."""
    return lambda: [_parse_or_error(m, f"events[{i}]") for i, m in enumerate(events)]


def verification_to_message(result: Verification) -> audit_pb2.VerifyLogResponse:
    response = audit_pb2.VerifyLogResponse(
        intact=result.broken is None,
        verified_count=result.verified,
        start_sequence=result.start_sequence,
        end_sequence=result.end_sequence,
        head_sequence=result.head_sequence,
        head_hash=result.head_hash,
        checkpoint_tree_sizes=[c.size for c in result.checked],
    )
    if result.broken is not None:
        response.first_break.CopyFrom(
            audit_pb2.LogBreak(
                sequence=result.broken.sequence,
                kind=_KINDS[result.broken.kind.name],
                message=result.broken.message,
                expected=result.broken.expected,
                actual=result.broken.actual,
            )
        )
    return response


def checkpoint_to_message(checkpoint: Checkpoint) -> audit_pb2.Checkpoint:
    return audit_pb2.Checkpoint(
        name=f"checkpoints/{checkpoint.size}",
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        root_hash=checkpoint.root,
        note=checkpoint.note,
        create_time=to_timestamp(checkpoint.signed_ns),
    )


def inclusion_to_message(proof: InclusionProof, stored: StoredEvent) -> audit_pb2.InclusionProof:
    return audit_pb2.InclusionProof(
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        hashes=proof.hashes,
        event=event_to_message(stored),
    )
