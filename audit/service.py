"""The Audit Service's use cases: record events, read them back, follow them, verify the log.

Recording goes through the :class:`audit.ingest.Ingestor` (group commit), following through
the :class:`audit.subscriptions.Fanout`, reading and verifying through the
:class:`audit.store.EventStore`, checkpoints and proofs through the
:class:`audit.transparency.TransparencyLog`. Nothing here knows protobuf: a submission arrives as a
``Prepare`` that validates it where the commit runs, so the servicer's parsing of messages
overlaps the previous commit. Reads block: servicers call them through the blocking pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from audit import ingest
from audit.checkpoints import Checkpoint, VerifierKey
from audit.events import INT64_MAX, EventFilter, StoredEvent, as_struct, parse_event
from audit.ingest import Ingestor, Outcome, Prepare
from audit.query import check_filter, run_query, time_range_violations
from audit.store import EventStore
from audit.subscriptions import Fanout
from audit.transparency import InclusionProof, TransparencyLog
from audit.verification import Verification, verify_log
from common import pages, times
from common.auth import Principal
from common.errors import FieldViolation, MeshError, NotFound, invalid
from common.outbox import OutboxEvent
from common.permissions import Permission
from common.tickets import Ticket, TicketBook

SOURCE = "/audit"
"""The source of the events the Audit Service records about itself."""
TICKET_ISSUED = "audit.ticket.issued"

LAST_EVENT_ID = "Last-Event-ID"
"""The header a reconnecting EventSource sends, named as such in field violations."""
MAX_BATCH_EVENTS = 1000
"""Most events one PublishEvents call or one stream message may carry."""
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """Bounds on waiting for commits: how many messages per stream, how long per caller."""

    stream_window: int
    """Most messages of one stream waiting for their commit."""
    commit_timeout: float = 30.0
    """Seconds a caller waits for its commit before it is told to retry."""


def _check_count(count: int) -> None:
    """A batch holds 1 to :data:`MAX_BATCH_EVENTS` events."""
    if not 0 < count <= MAX_BATCH_EVENTS:
        raise invalid(
            [
                FieldViolation(
                    "events", f"must hold 1 to {MAX_BATCH_EVENTS} events", "COUNT_OUT_OF_RANGE"
                )
            ]
        )


class AuditService:
    """The domain behind AuditService; raises ``common.errors`` only."""

    def __init__(
        self,
        *,
        store: EventStore,
        ingestor: Ingestor,
        fanout: Fanout,
        log: TransparencyLog,
        limits: Limits,
        tickets: TicketBook,
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._fanout = fanout
        self._log = log
        self._limits = limits
        self._tickets = tickets

    async def publish(self, prepare: Prepare, count: int) -> list[Outcome]:
        """Record one submission of ``count`` events once its transaction has committed."""
        _check_count(count)
        pending = await self._ingestor.submit(prepare, count)
        return await ingest.settle(pending, self._limits.commit_timeout)

    async def record_own(self, event: OutboxEvent) -> None:
        """Append an event of the Audit Service itself, through the same ingest as any other.

        Its data is stored as if it had come as a Struct, as every other event's does (numbers
        are doubles), so that a client recomputing the event's hash from what it reads back
        gets the stored one.
        """
        parsed = parse_event(
            id=event.id,
            source=SOURCE,
            type=event.type,
            subject=event.subject,
            time_ns=event.time_ns,
            actor=event.actor,
            data=as_struct(event.body()),
        )
        (outcome,) = await self.publish(lambda: [parsed], 1)
        if isinstance(outcome, MeshError):
            raise outcome

    def publish_stream(
        self, messages: AsyncIterator[tuple[list[T], Prepare]]
    ) -> AsyncIterator[list[tuple[T, Outcome]]]:
        """Record a stream of submissions, yielding each item with its outcome in order."""

        async def checked() -> AsyncIterator[tuple[list[T], Prepare]]:
            async for items, prepare in messages:
                _check_count(len(items))
                yield items, prepare

        return ingest.pipeline(
            self._ingestor,
            checked(),
            window=self._limits.stream_window,
            commit_timeout=self._limits.commit_timeout,
        )

    def query(
        self, selection: EventFilter, *, order: str, page_size: int, page_token: str
    ) -> pages.Page[StoredEvent]:
        return run_query(
            self._store, selection, order=order, page_size=page_size, page_token=page_token
        )

    def get(self, sequence: int) -> StoredEvent:
        stored = self._store.get(sequence)
        if stored is None:
            name = f"events/{sequence}"
            raise NotFound(
                f"{name} does not exist", reason="EVENT_NOT_FOUND", metadata={"name": name}
            )
        return stored

    def subscribe(
        self, selection: EventFilter, *, after: int, last_event_id: str = ""
    ) -> AsyncIterator[StoredEvent]:
        """Matching events after sequence ``after``: stored ones, then live ones as they commit.

        ``last_event_id`` is the server-sent events' ``Last-Event-ID``: the sequence of the last
        event a reconnecting client received. It wins over ``after``, which a browser sends
        again unchanged in the URL it reconnects to. The request is checked before anything is
        held.
        """
        violations = check_filter(selection)
        if after < 0:
            violations.append(
                FieldViolation("after_sequence", "must not be negative", "INVALID_VALUE")
            )
        if last_event_id:
            if (
                last_event_id.isascii()
                and last_event_id.isdigit()
                and int(last_event_id) <= INT64_MAX
            ):
                after = int(last_event_id)
            else:
                violations.append(
                    FieldViolation(
                        LAST_EVENT_ID,
                        "must be the sequence of an event received before",
                        "INVALID_FORMAT",
                    )
                )
        if violations:
            raise invalid(violations)
        return self._fanout.subscribe(selection, after=after)

    async def subscription_ticket(self, principal: Principal, *, method: str) -> Ticket:
        """A ticket that opens the subscription ``method`` as ``principal``, who can read.

        A ticket is a credential, so its issue is recorded like a login.
        """
        ticket = self._tickets.issue(principal, purpose=method, permission=Permission.AUDIT_READ)
        await self.record_own(
            OutboxEvent(
                type=TICKET_ISSUED,
                subject=f"users/{principal.user_id}",
                actor=principal.username,
                data={
                    "method": method,
                    "session_id": principal.session_id,
                    "expire_time": times.to_rfc3339(ticket.expires_ns),
                },
            )
        )
        return ticket

    def verify(self, *, start: int, end: int, checkpoint: str) -> Verification:
        """Check the chain, and the tree against the caller's checkpoint and the log's own."""
        given = [self._log.open_note(checkpoint, "checkpoint")] if checkpoint else []
        known = [self._log.last_signed, self._store.checkpoint(None)]
        return verify_log(
            self._store,
            start=start,
            end=end,
            checkpoints=[*given, *(c for c in known if c is not None)],
        )

    def checkpoint(self, size: int | None) -> Checkpoint:
        """A stored checkpoint; the newest (``None``) is signed first if there is none yet."""
        return self._log.checkpoint(size)

    def list_checkpoints(
        self, *, start_ns: int | None, end_ns: int | None, page_size: int, page_token: str
    ) -> pages.Page[Checkpoint]:
        violations = time_range_violations(start_ns, end_ns)
        if violations:
            raise invalid(violations)
        return self._log.checkpoints(
            start_ns=start_ns, end_ns=end_ns, page_size=page_size, page_token=page_token
        )

    def create_checkpoint(self) -> Checkpoint:
        return self._log.sign()

    def inclusion_proof(self, sequence: int, tree_size: int) -> tuple[InclusionProof, StoredEvent]:
        return self._log.inclusion(sequence, tree_size)

    def consistency_proof(self, first: int, second: int) -> tuple[int, list[bytes]]:
        """The proof and the second tree size it leads to (0 asks for the newest)."""
        return self._log.consistency(first, second)

    def verifier_key(self) -> VerifierKey:
        return self._log.verifier_key
