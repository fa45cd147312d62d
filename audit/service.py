"""The Audit Service's use cases: record events, read them back, follow them, verify the chain.

Recording goes through the :class:`audit.ingest.Ingestor` (group commit), following through
the :class:`audit.subscriptions.Fanout`, reading and verifying through the
:class:`audit.store.EventStore`. Nothing here knows protobuf: a submission arrives as a
``Prepare`` that validates it where the commit runs, so the servicer's parsing of messages
overlaps the previous commit. Reads block: servicers call them through the blocking pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from audit import ingest
from audit.events import INT64_MAX, EventFilter, StoredEvent
from audit.ingest import Ingestor, Outcome, Prepare
from audit.query import check_filter, run_query
from audit.store import EventStore
from audit.subscriptions import Fanout
from audit.verification import Verification, verify_log
from common import pages
from common.auth import Principal
from common.errors import FieldViolation, NotFound, invalid
from common.permissions import Permission
from common.tickets import Ticket, TicketBook

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
        limits: Limits,
        tickets: TicketBook,
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._fanout = fanout
        self._limits = limits
        self._tickets = tickets

    async def publish(self, prepare: Prepare, count: int) -> list[Outcome]:
        """Record one submission of ``count`` events once its transaction has committed."""
        _check_count(count)
        pending = await self._ingestor.submit(prepare, count)
        return await ingest.settle(pending, self._limits.commit_timeout)

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

    def subscription_ticket(self, principal: Principal, *, method: str) -> Ticket:
        """A ticket that opens the subscription ``method`` as ``principal``, who can read."""
        return self._tickets.issue(principal, purpose=method, permission=Permission.AUDIT_READ)

    def verify(self, *, start: int, end: int) -> Verification:
        return verify_log(self._store, start=start, end=end)
