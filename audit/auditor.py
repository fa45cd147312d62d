"""What an outside auditor runs against the log: a witness, an export, and its offline check.

These are clients of the Audit Service's API (through the gateway or straight to the service)
that trust nothing it says without checking: checkpoints against a pinned verifier key, trees
against the events (each recomputed from its content), and one checkpoint against the next
with a consistency proof (:mod:`audit.merkle`).

- :func:`witness` remembers the last checkpoint it verified in a state file. Each run fetches
  the newest one, proves it consistent with the remembered one, and replays the events,
  recomputing the chain and the tree, so a truncated, rewritten or edited log is caught at the
  next run.
- :func:`export` writes a range of events as CloudEvents JSON Lines: first the checkpoint, then
  each event with its inclusion proof. :func:`verify_export` checks such a file with nothing
  but the verifier key.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc

from audit import chain, convert, merkle
from audit.checkpoints import Checkpoint, NoteError, VerifierKey
from audit.events import Event, StoredEvent
from audit.v1 import audit_pb2, audit_pb2_grpc
from common import times
from common.canonical import canonical_json

CHECKPOINT_TYPE = "audit.log.checkpoint"
"""The type of an export's first line, which carries the checkpoint its proofs lead to."""
Metadata = Sequence[tuple[str, str]]


class Evidence(Exception):
    """The log failed a check: what a witness or an offline check reports as tampering."""


@dataclass(frozen=True)
class Api:
    """The Audit Service's stub and the call metadata (a bearer token with ``audit:read``)."""

    stub: audit_pb2_grpc.AuditServiceStub
    metadata: Metadata
    timeout: float = 30.0

    @classmethod
    def connect(cls, channel: grpc.Channel, token: str) -> Api:
        return cls(audit_pb2_grpc.AuditServiceStub(channel), [("authorization", f"Bearer {token}")])

    def latest(self) -> audit_pb2.Checkpoint:
        """The newest signed checkpoint; the log's own report of tampering is evidence."""
        try:
            found: audit_pb2.Checkpoint = self.stub.GetCheckpoint(
                audit_pb2.GetCheckpointRequest(name="checkpoints/latest"),
                metadata=self.metadata,
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise Evidence(f"the log refuses to sign a checkpoint: {exc.details()}") from exc
            raise
        return found

    def events(self, first: int, last: int) -> Iterator[audit_pb2.Event]:
        """The stored events ``first..last``, in order, a page at a time."""
        token = ""
        while last >= first:
            page = self.stub.QueryEvents(
                audit_pb2.QueryEventsRequest(
                    start_sequence=first, end_sequence=last, page_size=1000, page_token=token
                ),
                metadata=self.metadata,
                timeout=self.timeout,
            )
            yield from page.events
            token = page.next_page_token
            if not token:
                return


def _open(key: VerifierKey, note: str, what: str) -> Checkpoint:
    try:
        return key.open(note)
    except NoteError as exc:
        raise Evidence(f"{what} does not verify with the pinned key: {exc}") from exc


def _checked_leaf(stored: StoredEvent, where: str = "") -> bytes:
    """The event's leaf hash, once its content is shown to match its hash."""
    sealed, leaf = chain.seal(
        stored.event,
        sequence=stored.sequence,
        recorded_ns=stored.recorded_ns,
        previous_hash=stored.previous_hash,
    )
    if sealed.hash != stored.hash:
        raise Evidence(f"{where}event {stored.sequence} does not match its hash: it was changed")
    return leaf


class Replay:
    """Recomputes the chain and the tree over events fed in order from the first."""

    def __init__(self) -> None:
        self.tree = merkle.Frontier()
        self.previous_hash = chain.GENESIS

    def feed(self, stored: StoredEvent) -> None:
        expected = self.tree.size + 1
        if stored.sequence != expected:
            raise Evidence(f"event {expected} is missing (the log went on at {stored.sequence})")
        leaf = _checked_leaf(stored)
        if stored.previous_hash != self.previous_hash:
            raise Evidence(f"event {stored.sequence} does not link to the event before it")
        self.previous_hash = stored.hash
        self.tree.append(leaf)

    def check(self, checkpoint: Checkpoint) -> None:
        if self.tree.root() != checkpoint.root:
            raise Evidence(
                f"the first {checkpoint.size} events do not hash to the root of the signed"
                " checkpoint of that size: the log was rewritten"
            )


@dataclass(frozen=True)
class WitnessState:
    """What a witness keeps between runs: the pinned key and the last checkpoint it verified."""

    verifier_key: str
    checkpoint: str

    @classmethod
    def load(cls, path: Path) -> WitnessState | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cls(verifier_key=raw["verifier_key"], checkpoint=raw["checkpoint"])

    def save(self, path: Path) -> None:
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(
            json.dumps({"verifier_key": self.verifier_key, "checkpoint": self.checkpoint}) + "\n"
        )
        os.replace(partial, path)


def witness(api: Api, state_path: Path, *, pin: str | None, replay: bool = True) -> Checkpoint:
    """Verify the newest checkpoint against the remembered one, then remember it.

    ``pin`` is the verifier key to trust on the first run; later runs use the one in the state
    file (a different ``pin`` is refused). Raises :class:`Evidence` on any failed check, and
    leaves the state file as it was.
    """
    state = WitnessState.load(state_path)
    if state is not None and pin is not None and pin.strip() != state.verifier_key:
        raise ValueError("the key given differs from the one pinned in the state file")
    pinned_text = state.verifier_key if state is not None else pin
    if pinned_text is None:
        raise ValueError("the first run needs the log's verifier key (--key)")
    pinned = VerifierKey.parse(pinned_text)
    new = _open(pinned, api.latest().note, "the newest checkpoint")
    old = _open(pinned, state.checkpoint, "the remembered checkpoint") if state else None
    if old is not None:
        if new.size < old.size:
            raise Evidence(
                f"the log's newest checkpoint holds {new.size} events, fewer than the"
                f" {old.size} of the checkpoint remembered: the log was truncated"
            )
        proof = api.stub.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(
                first_tree_size=old.size, second_tree_size=new.size
            ),
            metadata=api.metadata,
            timeout=api.timeout,
        )
        try:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, list(proof.hashes))
        except merkle.ProofError as exc:
            raise Evidence(
                f"checkpoint {new.size} is not consistent with checkpoint {old.size}: {exc}"
            ) from exc
    if replay:
        replayed = Replay()
        for message in api.events(1, new.size):
            replayed.feed(convert.stored_to_domain(message))
            if old is not None and replayed.tree.size == old.size:
                replayed.check(old)
        if replayed.tree.size < new.size:
            raise Evidence(f"the log holds {replayed.tree.size} events, not {new.size}")
        replayed.check(new)
    WitnessState(pinned.encode(), new.note).save(state_path)
    return new


def _b64(hashes: Sequence[bytes]) -> str:
    return ",".join(base64.b64encode(h).decode() for h in hashes)


def to_cloudevent(stored: StoredEvent, proof: Sequence[bytes]) -> dict[str, Any]:
    """An event as a CloudEvents 1.0 JSON object, with the log's fields as extensions."""
    event = stored.event
    found: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": times.to_rfc3339(stored.time_ns),
        "data": json.loads(event.data),
        "actor": event.actor,
        "sequence": stored.sequence,
        "recordedtime": times.to_rfc3339(stored.recorded_ns),
        "hash": stored.hash,
        "previoushash": stored.previous_hash,
        "inclusionproof": _b64(proof),
    }
    for name, value in (  # absent when the producer gave none: each is in the event's hash
        ("subject", event.subject),
        ("datacontenttype", event.datacontenttype),
        ("dataschema", event.dataschema),
        ("traceparent", event.traceparent),
        ("tracestate", event.tracestate),
    ):
        if value:
            found[name] = value
    return found


def from_cloudevent(found: dict[str, Any]) -> tuple[StoredEvent, list[bytes]]:
    """The stored event and inclusion proof a line of an export holds (KeyError if not)."""
    proof = found["inclusionproof"]
    return (
        StoredEvent(
            event=Event(
                id=found["id"],
                source=found["source"],
                type=found["type"],
                subject=found.get("subject", ""),
                time_ns=times.from_rfc3339(found["time"]),
                actor=found["actor"],
                data=canonical_json(found["data"]),
                datacontenttype=found.get("datacontenttype", ""),
                dataschema=found.get("dataschema", ""),
                traceparent=found.get("traceparent", ""),
                tracestate=found.get("tracestate", ""),
            ),
            sequence=found["sequence"],
            recorded_ns=times.from_rfc3339(found["recordedtime"]),
            previous_hash=found["previoushash"],
            hash=found["hash"],
        ),
        [base64.b64decode(h, validate=True) for h in proof.split(",")] if proof else [],
    )


def export(api: Api, first: int, last: int, out: IO[str]) -> Checkpoint:
    """Write events ``first..last`` with a checkpoint covering them and their proofs."""
    latest = api.latest()
    if latest.tree_size < last:
        latest = api.stub.CreateCheckpoint(
            audit_pb2.CreateCheckpointRequest(), metadata=api.metadata, timeout=api.timeout
        )
    if latest.tree_size < last:
        raise ValueError(f"the log holds {latest.tree_size} events, fewer than {last}")
    header = {
        "specversion": "1.0",
        "id": latest.name,
        "source": "/audit",
        "type": CHECKPOINT_TYPE,
        "subject": latest.origin,
        "time": times.to_rfc3339(times.from_timestamp(latest.create_time)),
        "datacontenttype": "text/plain",
        "data": latest.note,
    }
    out.write(json.dumps(header, ensure_ascii=False) + "\n")
    for message in api.events(first, last):
        proof = api.stub.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(name=message.name, tree_size=latest.tree_size),
            metadata=api.metadata,
            timeout=api.timeout,
        )
        line = to_cloudevent(convert.stored_to_domain(message), list(proof.hashes))
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return Checkpoint(latest.origin, latest.tree_size, latest.root_hash, latest.note)


def verify_export(lines: IO[str], key: VerifierKey) -> tuple[Checkpoint, int]:
    """Check an export offline: the checkpoint's signature, each event's proof and the links.

    Returns the checkpoint and how many events verified; :class:`Evidence` names the first
    line that fails.
    """
    header = lines.readline()
    try:
        note = json.loads(header)["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Evidence("line 1 is not the export's checkpoint") from exc
    checkpoint = _open(key, note, "the export's checkpoint")
    count = 0
    previous: StoredEvent | None = None
    for number, line in enumerate(lines, start=2):
        try:
            stored, proof = from_cloudevent(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Evidence(f"line {number} is not an exported event: {exc}") from exc
        leaf = _checked_leaf(stored, f"line {number}: ")
        if previous is not None and (
            stored.sequence != previous.sequence + 1 or stored.previous_hash != previous.hash
        ):
            raise Evidence(
                f"line {number}: event {stored.sequence} does not follow the line before"
            )
        try:
            merkle.verify_inclusion(
                leaf, stored.sequence - 1, checkpoint.size, proof, checkpoint.root
            )
        except merkle.ProofError as exc:
            raise Evidence(
                f"line {number}: event {stored.sequence} is not in checkpoint {checkpoint.size}:"
                f" {exc}"
            ) from exc
        previous = stored
        count += 1
    return checkpoint, count
