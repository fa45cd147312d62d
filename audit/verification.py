"""VerifyLog: recompute the hash chain over a range of the stored log."""

from __future__ import annotations

from dataclasses import dataclass

from audit import chain
from audit.store import EventStore
from common.errors import FieldViolation, OutOfRange, invalid


@dataclass(frozen=True)
class Verification:
    """What VerifyLog found over the range it checked: the first break, if any, and the head."""

    start_sequence: int
    end_sequence: int
    verified: int
    head_sequence: int
    head_hash: str
    broken: chain.Break | None


def verify_log(store: EventStore, *, start: int, end: int) -> Verification:
    """Check ``start..end`` (``end`` 0: up to the head) and, when it reaches the head, the head.

    The event before ``start`` supplies the first expected link, so a range can be checked
    without rereading the whole log; a missing predecessor is itself a break.
    """
    violations = []
    if start < 0:
        violations.append(FieldViolation("start_sequence", "must not be negative", "INVALID_VALUE"))
    if end < 0:
        violations.append(FieldViolation("end_sequence", "must not be negative", "INVALID_VALUE"))
    elif end and end < max(start, 1):
        violations.append(
            FieldViolation("end_sequence", "must not be before start_sequence", "INVALID_RANGE")
        )
    if violations:
        raise invalid(violations)
    head_sequence, head_hash, last_stored = store.head()
    start = max(start, 1)
    last = max(head_sequence, last_stored)
    if start > 1 and start > last:
        raise OutOfRange(
            f"start_sequence {start} is beyond the head of the log ({last})",
            reason="SEQUENCE_OUT_OF_RANGE",
        )
    end = min(end or last, last)
    verifier = chain.ChainVerifier(start_sequence=start, previous_hash=chain.GENESIS)
    if start > 1:
        before = store.get(start - 1)
        if before is None:
            verifier.broken = chain.Break(
                start - 1, chain.BreakKind.SEQUENCE_MISSING, expected=str(start - 1), actual=""
            )
        else:
            verifier.previous_hash = before.hash
    for stored in store.scan(start, end):
        if not verifier.feed(stored):
            break
    verifier.finish(end_sequence=end)
    if verifier.broken is None and end == last and verifier.previous_hash != head_hash:
        verifier.broken = chain.Break(
            end,
            chain.BreakKind.HEAD_MISMATCH,
            expected=head_hash,
            actual=verifier.previous_hash,
        )
    return Verification(
        start_sequence=start,
        end_sequence=end,
        verified=verifier.verified,
        head_sequence=head_sequence,
        head_hash=head_hash,
        broken=verifier.broken,
    )
