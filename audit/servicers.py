"""The gRPC face of the log: proto messages in and out, everything else in :mod:`audit.service`.

Parsing and validating events runs in the blocking pool with the commit (see
:mod:`audit.ingest`); reads hop to the blocking pool; streams stay on the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from audit import convert, ingest
from audit.events import INT64_MAX
from audit.service import AuditService
from audit.v1 import audit_pb2, audit_pb2_grpc
from common.blocking import Blocking
from common.errors import FieldViolation, MeshError, invalid
from common.interceptors import Policy, current_principal, requires
from common.permissions import Permission
from common.times import to_timestamp

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
}
Context = Any
"""``grpc.aio.ServicerContext``; only SubscribeEvents uses it, for ``Last-Event-ID`` and to send
its headers early."""


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
        return audit_pb2.QueryEventsResponse(
            events=[convert.event_to_message(s) for s in page.items],
            next_page_token=page.next_page_token,
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
        return convert.event_to_message(await self._run(self._service.get, int(sequence)))

    async def SubscribeEvents(
        self, request: audit_pb2.SubscribeEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.Event]:
        last_event_id = next(
            (v for k, v in context.invocation_metadata() or () if k == "last-event-id"), ""
        )
        events = self._service.subscribe(
            convert.filter_to_domain(request),
            after=request.after_sequence,
            last_event_id=last_event_id,
        )
        await context.send_initial_metadata(())  # the subscriber knows it holds a slot at once
        async for stored in events:
            yield convert.event_to_message(stored)

    async def CreateSubscriptionTicket(
        self, request: audit_pb2.CreateSubscriptionTicketRequest, context: Context
    ) -> audit_pb2.SubscriptionTicket:
        ticket = self._service.subscription_ticket(current_principal(), method=SUBSCRIBE)
        return audit_pb2.SubscriptionTicket(
            ticket=ticket.value, expire_time=to_timestamp(ticket.expires_ns)
        )

    async def VerifyLog(
        self, request: audit_pb2.VerifyLogRequest, context: Context
    ) -> audit_pb2.VerifyLogResponse:
        result = await self._run(
            self._service.verify, start=request.start_sequence, end=request.end_sequence
        )
        return convert.verification_to_message(result)
