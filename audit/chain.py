"""The hash chain: each stored event's SHA-256 covers its content and the hash before it.

The canonical encoding of a stored event is the canonical JSON (sorted keys, no spaces, UTF-8,
see :func:`common.canonical.canonical_json`) of::

    {"actor": str, "data": object, "id": str, "previous_hash": str, "recorded_time": int,
     "sequence": int, "source": str, "subject": str, "time": int, "type": str}

plus each of ``datacontenttype``, ``dataschema``, ``traceparent`` and ``tracestate`` (str)
that the event has, and none that it lacks. Events stored before those attributes existed
have none, so their encoding, and hash, is what it always was. Both times are integer
nanoseconds since the Unix epoch (``time`` is the recorded time for an event sent without
one), and ``hash`` is the lowercase hex SHA-256 of those bytes. The first event's
``previous_hash`` is :data:`GENESIS`. Changing any field of an event breaks its own hash;
deleting one breaks the sequence and the next link.

:func:`encode` is the one builder of those bytes: the same bytes are the event's leaf in the
log's Merkle tree (:mod:`audit.merkle`), so a checkpoint's root covers exactly what the chain
covers.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring as _str

from audit import merkle
from audit.events import Event, StoredEvent

GENESIS = "0" * 64
_sha256 = hashlib.sha256


def _member(key: str, value: str) -> str:
    """A member of the encoding for an attribute the event has."""
    return f',"{key}":{_str(value)}'


def encode(event: Event, *, sequence: int, recorded_ns: int, previous_hash: str) -> bytes:
    """The canonical encoding; ``event.data`` is already canonical JSON, so it is spliced in."""
    return _encode(event, sequence, recorded_ns, previous_hash)


def _encode(event: Event, sequence: int, recorded_ns: int, previous_hash: str) -> bytes:
    """:func:`encode`, positionally: ingest encodes every event it chains.

    The members are written in sorted order; an optional one is written only when present,
    where it sorts. The event is unpacked once rather than read attribute by attribute.
    """
    (id_, source, type_, subject, time_ns, actor, data, contenttype, schema, parent, state) = event
    if time_ns is None:
        time_ns = recorded_ns
    return (
        f'{{"actor":{_str(actor)},"data":{data}'
        f"{_member('datacontenttype', contenttype) if contenttype else ''}"
        f"{_member('dataschema', schema) if schema else ''}"
        f',"id":{_str(id_)},'
        f'"previous_hash":{_str(previous_hash)},"recorded_time":{recorded_ns},'
        f'"sequence":{sequence},"source":{_str(source)},"subject":{_str(subject)},'
        f'"time":{time_ns}'
        f"{_member('traceparent', parent) if parent else ''}"
        f"{_member('tracestate', state) if state else ''}"
        f',"type":{_str(type_)}}}'
    ).encode()


def seal(
    event: Event, *, sequence: int, recorded_ns: int, previous_hash: str
) -> tuple[StoredEvent, bytes]:
    """Place ``event`` in the chain after ``previous_hash``; also return its Merkle leaf hash.

    An event without a time takes the time it is recorded.
    """
    return _seal(event, sequence, recorded_ns, previous_hash)


def seal_all(
    batch: Iterable[Event], *, after: int, recorded_ns: int, previous_hash: str
) -> tuple[list[StoredEvent], list[bytes]]:
    """:func:`seal` each event of ``batch`` in turn, the first at sequence ``after + 1``.

    The stored events and their Merkle leaf hashes, in order. One loop for a commit's events:
    the append chains up to a batch at a time, and per event a call with keywords cost a
    sizeable part of the sealing itself.
    """
    stored: list[StoredEvent] = []
    leaves: list[bytes] = []
    for sequence, event in enumerate(batch, after + 1):
        sealed, leaf = _seal(event, sequence, recorded_ns, previous_hash)
        previous_hash = sealed.hash
        stored.append(sealed)
        leaves.append(leaf)
    return stored, leaves


def _seal(
    event: Event, sequence: int, recorded_ns: int, previous_hash: str
) -> tuple[StoredEvent, bytes]:
    if event.time_ns is None:
        event = event._replace(time_ns=recorded_ns)
    encoded = _encode(event, sequence, recorded_ns, previous_hash)
    digest = _sha256(encoded).hexdigest()
    return StoredEvent(event, sequence, recorded_ns, previous_hash, digest), merkle.leaf_hash(
        encoded
    )


def link(event: Event, *, sequence: int, recorded_ns: int, previous_hash: str) -> StoredEvent:
    """Place ``event`` in the chain after ``previous_hash``."""
    return _seal(event, sequence, recorded_ns, previous_hash)[0]


def leaf_hash(stored: StoredEvent) -> bytes:
    """The Merkle leaf hash of a stored event, recomputed from its content."""
    return merkle.leaf_hash(
        _encode(stored.event, stored.sequence, stored.recorded_ns, stored.previous_hash)
    )


class BreakKind(enum.Enum):
    """How the chain fails to hold at a break; each value is the wording of its message."""

    HASH_MISMATCH = "the event's content does not match its hash"
    PREVIOUS_HASH_MISMATCH = "the event does not link to the hash of the event before it"
    SEQUENCE_MISSING = "the event with this sequence is missing"
    HEAD_MISMATCH = "the recorded head does not match the last stored event"
    CHECKPOINT_MISMATCH = "the events up to here do not hash to the root of a signed checkpoint"
    TRUNCATED = "the log holds fewer events than a signed checkpoint records"
    TREE_MISMATCH = "the stored Merkle tree does not match the events"


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold, with what it should be and what it is."""

    sequence: int
    kind: BreakKind
    expected: str
    actual: str

    @property
    def message(self) -> str:
        return f"sequence {self.sequence}: {self.kind.value}"


class ChainVerifier:
    """Checks stored events fed in sequence order; stops at the first break."""

    def __init__(self, *, start_sequence: int, previous_hash: str) -> None:
        self.next_sequence = start_sequence
        self.previous_hash = previous_hash
        self.verified = 0
        self.broken: Break | None = None
        self.leaf = b""
        """The Merkle leaf hash of the last event verified."""

    def feed(self, stored: StoredEvent) -> bool:
        """Verify the next event; False once the chain is broken."""
        if self.broken is not None:
            return False
        if stored.sequence != self.next_sequence:
            self.broken = Break(
                self.next_sequence,
                BreakKind.SEQUENCE_MISSING,
                expected=str(self.next_sequence),
                actual=str(stored.sequence),
            )
            return False
        relinked, self.leaf = seal(
            stored.event,
            sequence=stored.sequence,
            recorded_ns=stored.recorded_ns,
            previous_hash=stored.previous_hash,
        )
        recomputed = relinked.hash
        if recomputed != stored.hash:
            self.broken = Break(
                stored.sequence, BreakKind.HASH_MISMATCH, expected=recomputed, actual=stored.hash
            )
        elif stored.previous_hash != self.previous_hash:
            self.broken = Break(
                stored.sequence,
                BreakKind.PREVIOUS_HASH_MISMATCH,
                expected=self.previous_hash,
                actual=stored.previous_hash,
            )
        if self.broken is not None:
            return False
        self.verified += 1
        self.next_sequence += 1
        self.previous_hash = stored.hash
        return True

    def finish(self, *, end_sequence: int) -> None:
        """Events missing at the end of the range are a break too."""
        if self.broken is None and self.next_sequence <= end_sequence:
            self.broken = Break(
                self.next_sequence,
                BreakKind.SEQUENCE_MISSING,
                expected=str(self.next_sequence),
                actual="",
            )
