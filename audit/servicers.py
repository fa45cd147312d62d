"""The gRPC face of the log: proto messages in and out, everything else in :mod:`audit.service`.

Parsing and validating events runs in the blocking pool with the commit (see
:mod:`audit.ingest`); reads hop to the blocking pool; streams stay on the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from audit import convert, ingest
from audit.events import INT64_MAX
from audit.service import TICKET_ISSUED, AuditService
from audit.v1 import audit_pb2, audit_pb2_grpc
from common import pages, times
from common.blocking import Blocking
from common.errors import FieldViolation, MeshError, invalid
from common.interceptors import PUBLIC, Context, Policy, current_principal, header, requires
from common.permissions import Permission

DOMAIN = "audit.mesh"
SERVICE = "audit.v1.AuditService"
SUBSCRIBE = f"/{SERVICE}/SubscribeEvents"
"""The method a subscription ticket opens, and its purpose."""
_WRITE = requires(Permission.AUDIT_WRITE)
_READ = requires(Permission.AUDIT_READ)
POLICIES: dict[str, Policy] = {
    f"/{SERVICE}/PublishEvent": _WRITE,
    f"/{SERVICE}/PublishEvents": _WRITE,
    f"/{SERVICE}/StreamEvents": _WRITE,
    f"/{SERVICE}/QueryEvents": _READ,
    f"/{SERVICE}/GetEvent": _READ,
    SUBSCRIBE: Policy(permission=Permission.AUDIT_READ, ticket=lambda request: request.ticket),
    f"/{SERVICE}/CreateSubscriptionTicket": _READ,
    f"/{SERVICE}/VerifyLog": _READ,
    f"/{SERVICE}/GetCheckpoint": _READ,
    f"/{SERVICE}/ListCheckpoints": _READ,
    f"/{SERVICE}/CreateCheckpoint": _READ,
    f"/{SERVICE}/GetInclusionProof": _READ,
    f"/{SERVICE}/GetConsistencyProof": _READ,
    f"/{SERVICE}/GetVerifierKey": PUBLIC,
}
PUBLISHED = "(the events published)"
"""What the ingest RPCs emit: the events they are given, which are their own record."""
SIGNED = "(the checkpoint signed)"
"""What CreateCheckpoint leaves: the stored checkpoint, listed by ListCheckpoints. An event
for it would grow the log past the checkpoint just signed."""
EVENTS: dict[str, tuple[str, ...]] = {
    f"/{SERVICE}/PublishEvent": (PUBLISHED,),
    f"/{SERVICE}/PublishEvents": (PUBLISHED,),
    f"/{SERVICE}/StreamEvents": (PUBLISHED,),
    f"/{SERVICE}/CreateCheckpoint": (SIGNED,),
    f"/{SERVICE}/CreateSubscriptionTicket": (TICKET_ISSUED,),
}
"""The event types each RPC appends to the log (see docs/audit.md, "Event types").

Any RPC refused for its caller also appends ``audit.call.denied``, with source ``/audit``
(:mod:`common.denials`).
"""


def _number(name: str, collection: str, shape: str) -> int:
    """The number in a resource name ``{collection}/{number}``; INVALID_ARGUMENT otherwise."""
    prefix, _, tail = name.partition("/")
    if (
        prefix != collection
        or not (tail.isascii() and tail.isdigit())
        or not 1 <= int(tail) <= INT64_MAX
    ):
        raise invalid([FieldViolation("name", f"must be {shape}", "INVALID_FORMAT")])
    return int(tail)


def _sequence(name: str) -> int:
    return _number(name, "events", "events/{sequence}")


def _tree_size(name: str) -> int | None:
    """``checkpoints/latest`` is ``None``."""
    if name == "checkpoints/latest":
        return None
    return _number(name, "checkpoints", "checkpoints/{tree_size} or checkpoints/latest")


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Translates AuditService calls to :class:`audit.service.AuditService`."""

    def __init__(self, service: AuditService, blocking: Blocking) -> None:
        self._service = service
        self._run = blocking.run

    async def PublishEvent(
        self, request: audit_pb2.PublishEventRequest, context: Context
    ) -> audit_pb2.Event:
        event = convert.event_to_domain(request.event, "event")
        (outcome,) = await self._service.publish(lambda: [event], 1)
        if isinstance(outcome, MeshError):
            raise outcome
        return convert.event_to_message(outcome.stored)

    async def PublishEvents(
        self, request: audit_pb2.PublishEventsRequest, context: Context
    ) -> audit_pb2.PublishEventsResponse:
        outcomes = await self._service.publish(convert.parsing(request.events), len(request.events))
        response = audit_pb2.PublishEventsResponse()
        convert.add_acks(
            response.results, zip(request.events, outcomes, strict=True), domain=DOMAIN
        )
        return response

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[audit_pb2.StreamEventsRequest],
        context: Context,
    ) -> AsyncIterator[audit_pb2.StreamEventsResponse]:
        async def messages() -> AsyncIterator[tuple[list[audit_pb2.Event], ingest.Prepare]]:
            async for request in request_iterator:
                yield list(request.events), convert.parsing(request.events)

        async for group in self._service.publish_stream(messages()):
            response = audit_pb2.StreamEventsResponse()
            convert.add_acks(response.acks, group, domain=DOMAIN)
            yield response

    async def QueryEvents(
        self, request: audit_pb2.QueryEventsRequest, context: Context
    ) -> audit_pb2.QueryEventsResponse:
        page = await self._run(
            self._service.query,
            convert.filter_to_domain(request),
            order=request.order,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        kept, token = pages.fit(page, [convert.event_to_message(s) for s in page.items])
        return audit_pb2.QueryEventsResponse(events=kept, next_page_token=token)

    async def GetEvent(
        self, request: audit_pb2.GetEventRequest, context: Context
    ) -> audit_pb2.Event:
        stored = await self._run(self._service.get, _sequence(request.name))
        return convert.event_to_message(stored)

    async def SubscribeEvents(
        self, request: audit_pb2.SubscribeEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.Event]:
        events = self._service.subscribe(
            convert.filter_to_domain(request),
            after=request.after_sequence,
            last_event_id=header(context, "last-event-id"),
        )
        await context.send_initial_metadata(())  # the subscriber knows it holds a slot at once
        async for stored in events:
            yield convert.event_to_message(stored)

    async def CreateSubscriptionTicket(
        self, request: audit_pb2.CreateSubscriptionTicketRequest, context: Context
    ) -> audit_pb2.SubscriptionTicket:
        ticket = await self._service.subscription_ticket(current_principal(), method=SUBSCRIBE)
        return audit_pb2.SubscriptionTicket(
            ticket=ticket.value, expire_time=times.to_timestamp(ticket.expires_ns)
        )

    async def VerifyLog(
        self, request: audit_pb2.VerifyLogRequest, context: Context
    ) -> audit_pb2.VerifyLogResponse:
        result = await self._run(
            self._service.verify,
            start=request.start_sequence,
            end=request.end_sequence,
            checkpoint=request.checkpoint,
        )
        return convert.verification_to_message(result)

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: Context
    ) -> audit_pb2.Checkpoint:
        checkpoint = await self._run(self._service.checkpoint, _tree_size(request.name))
        return convert.checkpoint_to_message(checkpoint)

    async def ListCheckpoints(
        self, request: audit_pb2.ListCheckpointsRequest, context: Context
    ) -> audit_pb2.ListCheckpointsResponse:
        page = await self._run(
            self._service.list_checkpoints,
            start_ns=(
                times.from_timestamp(request.start_time) if request.HasField("start_time") else None
            ),
            end_ns=times.from_timestamp(request.end_time) if request.HasField("end_time") else None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        kept, token = pages.fit(page, [convert.checkpoint_to_message(c) for c in page.items])
        return audit_pb2.ListCheckpointsResponse(checkpoints=kept, next_page_token=token)

    async def CreateCheckpoint(
        self, request: audit_pb2.CreateCheckpointRequest, context: Context
    ) -> audit_pb2.Checkpoint:
        return convert.checkpoint_to_message(await self._run(self._service.create_checkpoint))

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: Context
    ) -> audit_pb2.InclusionProof:
        proof, stored = await self._run(
            self._service.inclusion_proof, _sequence(request.name), request.tree_size
        )
        return convert.inclusion_to_message(proof, stored)

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: Context
    ) -> audit_pb2.ConsistencyProof:
        second, hashes = await self._run(
            self._service.consistency_proof, request.first_tree_size, request.second_tree_size
        )
        return audit_pb2.ConsistencyProof(
            first_tree_size=request.first_tree_size, second_tree_size=second, hashes=hashes
        )

    async def GetVerifierKey(
        self, request: audit_pb2.GetVerifierKeyRequest, context: Context
    ) -> audit_pb2.VerifierKey:
        key = self._service.verifier_key()
        return audit_pb2.VerifierKey(
            name=key.name, verifier_key=key.encode(), public_key=key.public
        )


def _reasons() -> dict[str, tuple[str, ...]]:
    """The ErrorInfo reasons each RPC answers beyond the runtime's (see ``common/reasons.py``)."""
    ingest = ("EVENT_ID_CONFLICT", "INGEST_OVERLOADED", "COMMIT_FAILED", "COMMIT_TIMEOUT")
    stopping = ("SHUTTING_DOWN",)
    methods = {
        "PublishEvent": (*ingest, *stopping),
        "PublishEvents": (*ingest, *stopping),
        "StreamEvents": (*ingest, *stopping),
        "QueryEvents": ("PAGE_TOKEN_INVALID",),
        "GetEvent": ("EVENT_NOT_FOUND",),
        "SubscribeEvents": ("SEQUENCE_OUT_OF_RANGE", *stopping),
        "VerifyLog": ("SEQUENCE_OUT_OF_RANGE", "CHECKPOINT_NOT_FOUND"),
        "CreateCheckpoint": ("LOG_INCONSISTENT",),
        "GetCheckpoint": ("CHECKPOINT_NOT_FOUND", "LOG_INCONSISTENT"),
        "ListCheckpoints": ("PAGE_TOKEN_INVALID",),
        "GetInclusionProof": ("SEQUENCE_OUT_OF_RANGE", "TREE_SIZE_OUT_OF_RANGE"),
        "GetConsistencyProof": ("TREE_SIZE_OUT_OF_RANGE",),
    }
    return {f"/{SERVICE}/{name}": reasons for name, reasons in methods.items()}


REASONS = _reasons()
"""Checked against the code by the tests: see ``gateway/reasons.py``."""
