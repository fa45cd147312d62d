"""The gRPC face of the log: proto messages in and out, everything else in the domain modules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from audit import ingest
from audit.events import INT64_MAX, Event, EventFilter, Recorded, StoredEvent, parse_event
from audit.ingest import Ingestor
from audit.query import check_filter, run_query
from audit.store import EventStore
from audit.subscriptions import Fanout
from audit.v1 import audit_pb2, audit_pb2_grpc
from audit.verification import verify_log
from common.blocking import Blocking
from common.errors import FieldViolation, MeshError, NotFound, invalid
from common.interceptors import Policy, requires
from common.permissions import Permission
from common.status import status_proto

DOMAIN = "audit.mesh"
SERVICE = "audit.v1.AuditService"
_WRITE = requires(Permission.AUDIT_WRITE)
_READ = requires(Permission.AUDIT_READ)
POLICIES: dict[str, Policy] = {
    f"/{SERVICE}/PublishEvent": _WRITE,
    f"/{SERVICE}/PublishEvents": _WRITE,
    f"/{SERVICE}/StreamEvents": _WRITE,
    f"/{SERVICE}/QueryEvents": _READ,
    f"/{SERVICE}/GetEvent": _READ,
    f"/{SERVICE}/SubscribeEvents": _READ,
    f"/{SERVICE}/VerifyLog": _READ,
}
MAX_BATCH_EVENTS = 1000
_KINDS = {
    "HASH_MISMATCH": audit_pb2.LogBreak.KIND_HASH_MISMATCH,
    "PREVIOUS_HASH_MISMATCH": audit_pb2.LogBreak.KIND_PREVIOUS_HASH_MISMATCH,
    "SEQUENCE_MISSING": audit_pb2.LogBreak.KIND_SEQUENCE_MISSING,
    "HEAD_MISMATCH": audit_pb2.LogBreak.KIND_HEAD_MISMATCH,
}


def _nanos(timestamp: timestamp_pb2.Timestamp) -> int:
    return int(timestamp.seconds) * 1_000_000_000 + int(timestamp.nanos)


def _timestamp(nanos: int) -> timestamp_pb2.Timestamp:
    seconds, remainder = divmod(nanos, 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=remainder)


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


def event_from_proto(message: audit_pb2.Event, field_prefix: str) -> Event:
    return parse_event(
        id=message.id,
        source=message.source,
        type=message.type,
        subject=message.subject,
        time_ns=_nanos(message.time) if message.HasField("time") else None,
        actor=message.actor,
        data=_fields(message.data),
        field_prefix=field_prefix,
    )


def event_to_proto(stored: StoredEvent) -> audit_pb2.Event:
    event = stored.event
    data = struct_pb2.Struct()
    data.update(json.loads(event.data))
    return audit_pb2.Event(
        name=f"events/{stored.sequence}",
        id=event.id,
        source=event.source,
        type=event.type,
        subject=event.subject,
        time=_timestamp(event.time_ns),
        actor=event.actor,
        data=data,
        sequence=stored.sequence,
        recorded_time=_timestamp(stored.recorded_ns),
        hash=stored.hash,
        previous_hash=stored.previous_hash,
    )


def _acks(acks: Any, outcomes: Iterable[tuple[audit_pb2.Event, Recorded | MeshError]]) -> None:
    """Append an ack per outcome to the repeated field ``acks`` (built in place: cheaper than
    building each ack and copying it in)."""
    add = acks.add
    for message, outcome in outcomes:
        if isinstance(outcome, MeshError):
            add(id=message.id, source=message.source, error=status_proto(outcome, domain=DOMAIN))
        else:
            add(
                id=message.id,
                source=message.source,
                sequence=outcome.stored.sequence,
                duplicate=outcome.duplicate,
            )


def _filter(
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
        start_ns=_nanos(request.start_time) if request.HasField("start_time") else None,
        end_ns=_nanos(request.end_time) if request.HasField("end_time") else None,
    )


def _check_count(events: Sequence[audit_pb2.Event]) -> None:
    if not events or len(events) > MAX_BATCH_EVENTS:
        raise invalid(
            [
                FieldViolation(
                    "events", f"must hold 1 to {MAX_BATCH_EVENTS} events", "COUNT_OUT_OF_RANGE"
                )
            ]
        )


def _parse_or_error(message: audit_pb2.Event, field_prefix: str) -> Event | MeshError:
    try:
        return event_from_proto(message, field_prefix)
    except MeshError as exc:
        return exc


def _parsing(events: Sequence[audit_pb2.Event]) -> ingest.Prepare:
    """Validation of a batch, for the ingestor to run where it commits."""
    return lambda: [_parse_or_error(m, f"events[{i}]") for i, m in enumerate(events)]


@dataclass(frozen=True)
class Limits:
    stream_window: int
    commit_timeout: float = 30.0


Context = Any
"""``grpc.aio.ServicerContext``; only SubscribeEvents uses it, to send its headers early."""


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Translates AuditService calls to the store, the ingestor and the subscriptions."""

    def __init__(
        self,
        *,
        store: EventStore,
        ingestor: Ingestor,
        fanout: Fanout,
        blocking: Blocking,
        limits: Limits,
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._fanout = fanout
        self._run = blocking.run
        self._limits = limits

    async def PublishEvent(
        self, request: audit_pb2.PublishEventRequest, context: Context
    ) -> audit_pb2.Event:
        event = event_from_proto(request.event, "event")
        pending = await self._ingestor.submit(lambda: [event], 1)
        (outcome,) = await ingest.settle(pending, self._limits.commit_timeout)
        if isinstance(outcome, MeshError):
            raise outcome
        return event_to_proto(outcome.stored)

    async def PublishEvents(
        self, request: audit_pb2.PublishEventsRequest, context: Context
    ) -> audit_pb2.PublishEventsResponse:
        _check_count(request.events)
        pending = await self._ingestor.submit(_parsing(request.events), len(request.events))
        outcomes = await ingest.settle(pending, self._limits.commit_timeout)
        response = audit_pb2.PublishEventsResponse()
        _acks(response.results, zip(request.events, outcomes, strict=True))
        return response

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[audit_pb2.StreamEventsRequest],
        context: Context,
    ) -> AsyncIterator[audit_pb2.StreamEventsResponse]:
        async def messages() -> AsyncIterator[tuple[list[audit_pb2.Event], ingest.Prepare]]:
            async for request in request_iterator:
                _check_count(request.events)
                yield list(request.events), _parsing(request.events)

        async for group in ingest.pipeline(
            self._ingestor,
            messages(),
            window=self._limits.stream_window,
            commit_timeout=self._limits.commit_timeout,
        ):
            response = audit_pb2.StreamEventsResponse()
            _acks(response.acks, group)
            yield response

    async def QueryEvents(
        self, request: audit_pb2.QueryEventsRequest, context: Context
    ) -> audit_pb2.QueryEventsResponse:
        page = await self._run(
            run_query,
            self._store,
            _filter(request),
            order=request.order,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return audit_pb2.QueryEventsResponse(
            events=[event_to_proto(s) for s in page.events], next_page_token=page.next_page_token
        )

    async def GetEvent(
        self, request: audit_pb2.GetEventRequest, context: Context
    ) -> audit_pb2.Event:
        collection, _, sequence = request.name.partition("/")
        if (
            collection != "events"
            or not (sequence.isascii() and sequence.isdigit())
            or not 1 <= int(sequence) <= INT64_MAX
        ):
            raise invalid([FieldViolation("name", "must be events/{sequence}", "INVALID_FORMAT")])
        stored = await self._run(self._store.get, int(sequence))
        if stored is None:
            raise NotFound(
                f"{request.name} does not exist",
                reason="EVENT_NOT_FOUND",
                metadata={"name": request.name},
            )
        return event_to_proto(stored)

    async def SubscribeEvents(
        self, request: audit_pb2.SubscribeEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.Event]:
        selection = _filter(request)
        violations = check_filter(selection)
        if request.after_sequence < 0:
            violations.append(
                FieldViolation("after_sequence", "must not be negative", "INVALID_VALUE")
            )
        if violations:
            raise invalid(violations)
        await context.send_initial_metadata(())  # the subscriber knows it holds a slot at once
        async for stored in self._fanout.subscribe(selection, after=request.after_sequence):
            yield event_to_proto(stored)

    async def VerifyLog(
        self, request: audit_pb2.VerifyLogRequest, context: Context
    ) -> audit_pb2.VerifyLogResponse:
        result = await self._run(
            verify_log, self._store, start=request.start_sequence, end=request.end_sequence
        )
        response = audit_pb2.VerifyLogResponse(
            intact=result.broken is None,
            verified_count=result.verified,
            start_sequence=result.start_sequence,
            end_sequence=result.end_sequence,
            head_sequence=result.head_sequence,
            head_hash=result.head_hash,
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
