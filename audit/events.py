"""Audit events as the log sees them, and the validation every ingest path shares.

Validation reports every problem of an event at once, as field violations under the path the
caller used (``event.type``, ``events[3].time``), so a producer can fix a bad event in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from audit.attributes import check_attributes
from common import outbox
from common.canonical import NOT_FINITE, canonical_json, nested_deeper
from common.errors import AlreadyExists, FieldViolation, invalid, quoted

MAX_ID = 256
MAX_SOURCE = 256
MAX_TYPE = 128
MAX_SUBJECT = outbox.MAX_SUBJECT
MAX_ACTOR = outbox.MAX_ACTOR
MAX_DATA_BYTES = outbox.MAX_DATA_BYTES
MAX_DATA_NESTING = outbox.MAX_DATA_NESTING
"""Sizes match the outbox columns of the producing services, so anything they emit fits."""

INT64_MAX = 2**63 - 1
_SEGMENT = r"[a-z0-9][a-z0-9_-]*"
TYPE_PATTERN = re.compile(rf"{_SEGMENT}(\.{_SEGMENT}){{2,}}")
"""At least three dot-separated lowercase segments: ``<service>.<area>.<what happened>``."""
_TYPE_FILTER = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*\.?")
_CONTROL = outbox.CONTROL_CHARACTERS
_KNOWN_TYPES: set[str] = set()
"""Types already matched against :data:`TYPE_PATTERN`. A log sees few distinct types, and a
set lookup costs a tenth of the match ingest would otherwise make for every event."""
_MAX_KNOWN_TYPES = 4096


class Event(NamedTuple):
    """A producer's event, validated; ``data`` is held in its canonical JSON encoding.

    ``time_ns`` is None for an event sent without a time, until the log records it (it then
    takes its ``recorded_ns``). The optional CloudEvents attributes are empty when absent.
    ``specversion`` is not kept: 1.0 is the only version accepted, so every event is 1.0.

    This and the records below are named tuples: ingest makes several per event, and a tuple
    is made in a third of the time of a frozen dataclass.
    """

    id: str
    source: str
    type: str
    subject: str
    time_ns: int | None
    actor: str
    data: str
    datacontenttype: str = ""
    dataschema: str = ""
    traceparent: str = ""
    tracestate: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What makes an event unique: CloudEvents says (source, id)."""
        return (self.source, self.id)


class StoredEvent(NamedTuple):
    """An event as the log holds it: its position, commit time and place in the hash chain."""

    event: Event
    sequence: int
    recorded_ns: int
    previous_hash: str
    hash: str

    @property
    def time_ns(self) -> int:
        """When it happened: the producer's time, or when it was recorded if it gave none."""
        time_ns = self.event.time_ns
        return self.recorded_ns if time_ns is None else time_ns


def _text(
    violations: list[FieldViolation],
    field: str,
    value: str,
    *,
    limit: int,
    required: bool,
    spaces: bool = True,
) -> None:
    if not value:
        if required:
            violations.append(FieldViolation(field, "is required", "REQUIRED"))
        return
    if len(value) > limit:
        violations.append(FieldViolation(field, f"must be at most {limit} characters", "TOO_LONG"))
    if value.isprintable() and (spaces or " " not in value):
        return  # the common case, decided in C: only " " is both printable and a space
    if _CONTROL.search(value):
        violations.append(
            FieldViolation(field, "must not contain control characters", "INVALID_CHARACTERS")
        )
    elif not spaces and any(c.isspace() for c in value):
        violations.append(FieldViolation(field, "must not contain spaces", "INVALID_CHARACTERS"))


def check_type_filter(violations: list[FieldViolation], field: str, value: str) -> None:
    """A type filter is an exact type or a prefix of whole segments ending in ``.``."""
    if not value:
        return
    if len(value) > MAX_TYPE or not _TYPE_FILTER.fullmatch(value):
        violations.append(
            FieldViolation(
                field,
                "must be an event type such as oms.branch.created, or a prefix such as oms.branch.",
                "INVALID_FORMAT",
            )
        )


def parse_event(
    *,
    id: str,
    source: str,
    type: str,
    subject: str,
    time_ns: int | None,
    actor: str,
    data: dict[str, Any],
    specversion: str = "",
    datacontenttype: str = "",
    dataschema: str = "",
    traceparent: str = "",
    tracestate: str = "",
    field_prefix: str = "event",
) -> Event:
    """Validate a producer's event; raise InvalidArgument listing every violation.

    An event that is plainly valid is accepted after a few checks done in C; anything else
    goes through the full validation, which accepts what it accepts and names every problem.
    An absent ``time`` is allowed (CloudEvents makes it optional): the log records the event
    at the time it receives it.
    """
    try:
        encoded: str | None = canonical_json(data)
    except ValueError:
        encoded = None
    plainly_valid = (
        encoded is not None
        and not (specversion or datacontenttype or dataschema or traceparent or tracestate)
        and 0 < len(id) <= MAX_ID
        and 0 < len(source) <= MAX_SOURCE
        and len(subject) <= MAX_SUBJECT
        and len(actor) <= MAX_ACTOR
        and 0 < len(type) <= MAX_TYPE
        and (time_ns is None or -INT64_MAX <= time_ns <= INT64_MAX)
        and len(encoded) <= MAX_DATA_BYTES // 4  # whatever its characters, few enough bytes
        and not nested_deeper(data, encoded, MAX_DATA_NESTING)
        and f"{id}{source}{subject}{actor}".isprintable()
        and " " not in source
        and (type in _KNOWN_TYPES or _well_formed_type(type))
    )
    if not plainly_valid:
        violations = _violations(
            id=id,
            source=source,
            type=type,
            subject=subject,
            time_ns=time_ns,
            actor=actor,
            data=data,
            encoded=encoded,
            field_prefix=field_prefix,
        )
        check_attributes(
            violations,
            field_prefix,
            specversion=specversion,
            datacontenttype=datacontenttype,
            dataschema=dataschema,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        if violations:
            raise invalid(violations)
    assert encoded is not None
    return Event(  # positionally: half the cost of keywords, and ingest makes one per event
        id,
        source,
        type,
        subject,
        time_ns,
        actor,
        encoded,
        datacontenttype,
        dataschema,
        traceparent,
        tracestate,
    )


def _well_formed_type(type_: str) -> bool:
    """Whether ``type_`` matches :data:`TYPE_PATTERN`, remembering the (first few) that do."""
    if TYPE_PATTERN.fullmatch(type_) is None:
        return False
    if len(_KNOWN_TYPES) < _MAX_KNOWN_TYPES:
        _KNOWN_TYPES.add(type_)
    return True


def _violations(
    *,
    id: str,
    source: str,
    type: str,
    subject: str,
    time_ns: int | None,
    actor: str,
    data: dict[str, Any],
    encoded: str | None,
    field_prefix: str,
) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    _text(violations, f"{field_prefix}.id", id, limit=MAX_ID, required=True)
    _text(
        violations, f"{field_prefix}.source", source, limit=MAX_SOURCE, required=True, spaces=False
    )
    _text(violations, f"{field_prefix}.type", type, limit=MAX_TYPE, required=True)
    if type and len(type) <= MAX_TYPE and not TYPE_PATTERN.fullmatch(type):
        violations.append(
            FieldViolation(
                f"{field_prefix}.type",
                "must be lowercase dot-separated segments, at least three, such as "
                "oms.branch.created",
                "INVALID_FORMAT",
            )
        )
    _text(violations, f"{field_prefix}.subject", subject, limit=MAX_SUBJECT, required=False)
    _text(violations, f"{field_prefix}.actor", actor, limit=MAX_ACTOR, required=False)
    if time_ns is not None and not -INT64_MAX <= time_ns <= INT64_MAX:
        violations.append(
            FieldViolation(f"{field_prefix}.time", "must be between 1678 and 2262", "OUT_OF_RANGE")
        )
    if encoded is None:
        violations.append(FieldViolation(f"{field_prefix}.data", NOT_FINITE, "NOT_FINITE"))
    elif len(encoded.encode()) > MAX_DATA_BYTES:
        violations.append(
            FieldViolation(
                f"{field_prefix}.data",
                f"must encode to at most {MAX_DATA_BYTES} bytes of JSON",
                "TOO_LARGE",
            )
        )
    elif nested_deeper(data, encoded, MAX_DATA_NESTING):
        violations.append(
            FieldViolation(
                f"{field_prefix}.data",
                f"must nest objects and lists at most {MAX_DATA_NESTING} deep",
                "TOO_DEEP",
            )
        )
    return violations


def redelivers(original: Event, event: Event) -> bool:
    """Whether ``event`` is ``original`` sent again.

    An event sent without a time says nothing about when it happened, so it is the original
    whatever time the log gave that.
    """
    if event.time_ns is None:
        return original._replace(time_ns=None) == event
    return original == event


def conflict(event: Event) -> AlreadyExists:
    """A (source, id) reused for a different event: refused, the original stays."""
    return AlreadyExists(
        (
            f"event {quoted(event.id)} from {quoted(event.source)} "
            "was already recorded with different content"
        ),
        reason="EVENT_ID_CONFLICT",
        metadata={"source": event.source, "id": event.id},
    )


class Recorded(NamedTuple):
    """The outcome of recording an event; a redelivery gets the original with ``duplicate``."""

    stored: StoredEvent
    duplicate: bool


def as_struct(value: Any) -> Any:
    """``value`` as a ``google.protobuf.Struct`` holds it: every number a double.

    Events that arrive over the API come as Structs; one the log writes itself is made the
    same, so that its stored form is what a reader's recomputation of its hash starts from.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {key: as_struct(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_struct(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a query or subscription wants; empty fields match everything.

    ``type`` is an exact type or, ending in ``.``, a prefix of whole segments.
    """

    type: str = ""
    source: str = ""
    subject: str = ""
    actor: str = ""
    id: str = ""
    start_ns: int | None = None
    end_ns: int | None = None
    start_sequence: int = 0
    """Only events at or after this sequence (0: from the first); queries only."""
    end_sequence: int = 0
    """Only events at or before this sequence (0: up to the newest); queries only."""

    def matches(self, stored: StoredEvent) -> bool:
        """The same test the store's queries make, for events already in memory."""
        event = stored.event
        if self.type.endswith("."):
            if not event.type.startswith(self.type):
                return False
        elif self.type and event.type != self.type:
            return False
        return (
            (not self.source or event.source == self.source)
            and (not self.subject or event.subject == self.subject)
            and (not self.actor or event.actor == self.actor)
            and (not self.id or event.id == self.id)
            and (self.start_ns is None or stored.time_ns >= self.start_ns)
            and (self.end_ns is None or stored.time_ns < self.end_ns)
        )
