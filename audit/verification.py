"""VerifyLog: recompute the hash chain over a range of the stored log, and the Merkle tree.

A check from the first event also rebuilds the tree from the events and compares it with every
checkpoint given (the client's, the last one this log signed, the newest one stored) and with
the stored tree, so a tail cut together with its head row, or an event edited along with its
chain, is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit import chain, merkle, tiles
from audit.checkpoints import Checkpoint
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
    checked: tuple[Checkpoint, ...] = ()
    """The checkpoints the tree was compared with, and held."""


def verify_log(
    store: EventStore, *, start: int, end: int, checkpoints: Sequence[Checkpoint] = ()
) -> Verification:
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
    due = sorted({c.size: c for c in checkpoints if c.size}.values(), key=lambda c: c.size)
    checked: list[Checkpoint] = []
    tree = merkle.Frontier() if start == 1 else None
    for stored in store.scan(start, end):
        if not verifier.feed(stored):
            break
        if tree is not None:
            tree.append(verifier.leaf)
            while due and due[0].size == tree.size:
                checkpoint = due.pop(0)
                if tree.root() != checkpoint.root:
                    verifier.broken = _checkpoint_break(checkpoint, tree.root())
                    break
                checked.append(checkpoint)
            if verifier.broken is not None:
                break
    verifier.finish(end_sequence=end)
    if verifier.broken is None and end == last and verifier.previous_hash != head_hash:
        verifier.broken = chain.Break(
            end,
            chain.BreakKind.HEAD_MISMATCH,
            expected=head_hash,
            actual=verifier.previous_hash,
        )
    if verifier.broken is None and end == last and due:
        verifier.broken = chain.Break(
            due[-1].size,
            chain.BreakKind.TRUNCATED,
            expected=str(due[-1].size),
            actual=str(last),
        )
    if verifier.broken is None and tree is not None and end == last:
        try:
            stored_root = tiles.root_at(store.tiles, tree.size).hex()
        except LookupError:
            stored_root = ""  # tiles missing
        if stored_root != tree.root().hex():
            verifier.broken = chain.Break(
                end, chain.BreakKind.TREE_MISMATCH, expected=tree.root().hex(), actual=stored_root
            )
    return Verification(
        start_sequence=start,
        end_sequence=end,
        verified=verifier.verified,
        head_sequence=head_sequence,
        head_hash=head_hash,
        broken=verifier.broken,
        checked=tuple(checked),
    )


def _checkpoint_break(checkpoint: Checkpoint, root: bytes) -> chain.Break:
    return chain.Break(
        checkpoint.size,
        chain.BreakKind.CHECKPOINT_MISMATCH,
        expected=checkpoint.root.hex(),
        actual=root.hex(),
    )
