"""The transactional outbox: events written in the same transaction as the change they report.

A relay (``common.outbox_relay``) streams unsent rows to the Audit Service and deletes each row
once acknowledged, so neither a crash nor an Audit outage loses an event. Each row keeps the
``traceparent`` of the call that caused it, which the event carries into the audit log: the
record leads to the trace of the change, and the trace to its record.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common import origin, times, tracing
from common.canonical import canonical_json, nested_deeper
from common.db import add_column, columns, mark, replace_column

OUTBOX_TOPIC = "outbox"
"""Marked by every append, so a relay wakes once the row has committed."""
MAX_DATA_BYTES = 64 * 1024
"""The most bytes of canonical JSON the Audit Service takes as an event's ``data``."""
MAX_DATA_NESTING = 24
"""The most levels of objects and lists the Audit Service takes in an event's ``data`` (the
data object itself is the first); deep enough for an action's parameters, which the OMS
holds to 20, and far enough inside protobuf's 100 levels for every message that carries
an event."""
MAX_SUBJECT = 512
MAX_ACTOR = 256
"""The most characters the Audit Service takes as an event's ``subject`` and ``actor``."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""What the Audit Service refuses in a ``subject`` or an ``actor``."""


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The outbox table in a service's own schema; ``seq`` orders delivery.

    ``seq`` never reuses a number, even after the rows holding the highest ones are deleted
    (SQLite's AUTOINCREMENT), so a row written later always sorts after every earlier one.
    """
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(MAX_SUBJECT), nullable=False),
        sa.Column("actor", sa.String(MAX_ACTOR), nullable=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("traceparent", sa.String(64), nullable=True),
        sqlite_autoincrement=True,
    )


@dataclass(frozen=True)
class OutboxEvent:
    """A CloudEvents-shaped event before delivery; ``source`` is added by the relay."""

    type: str
    subject: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time_ns: int = field(default_factory=times.now)
    client_address: str = field(default_factory=origin.client_address)
    """Where the call that caused it came from (:mod:`common.origin`); the serving call's by
    default, empty for work no call asked for (first start)."""
    traceparent: str = field(default_factory=tracing.current_traceparent)
    """The W3C ``traceparent`` of the call that caused it (:mod:`common.tracing`); the serving
    call's by default, empty outside a call."""

    def body(self) -> dict[str, Any]:
        """``data`` with ``client_address``, which every event of the mesh carries."""
        return {**self.data, "client_address": self.client_address}


def append(conn: Connection, table: sa.Table, event: OutboxEvent) -> None:
    """Record ``event`` inside the caller's open transaction."""
    append_all(conn, table, [event])


def append_all(conn: Connection, table: sa.Table, events: Sequence[OutboxEvent]) -> None:
    """Record ``events`` inside the caller's open transaction, in one statement.

    A commit of 1,000 objects has 1,000 events; inserting them one by one cost more than
    the rest of the commit.
    """
    if not events:
        return
    conn.execute(
        table.insert(),
        [
            {
                "event_id": event.id,
                "type": event.type,
                "subject": printable(event.subject, MAX_SUBJECT),
                "actor": printable(event.actor, MAX_ACTOR),
                "time_ns": event.time_ns,
                "data": fitted(event.body()),
                "traceparent": event.traceparent or None,
            }
            for event in events
        ],
    )
    mark(conn, OUTBOX_TOPIC)


def printable(text: str, limit: int) -> str:
    """``text`` as the Audit Service takes a subject or an actor.

    Each control character becomes U+FFFD, and a longer text is cut to ``limit`` characters.
    Both can come from what a caller typed (a failed login's username), and the audit log
    would refuse the event and lose the record of it; its ``data`` keeps the exact value.
    """
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return CONTROL_CHARACTERS.sub("\ufffd", text) if not text.isprintable() else text


def fitted(data: Mapping[str, Any], limit: int = MAX_DATA_BYTES) -> str:
    """``data`` as canonical JSON within ``limit`` bytes, so the Audit Service takes the event.

    Past the limit its largest values (an action's long parameter, a tag's long message) are
    each replaced by ``{"omitted_bytes": n, "sha256": digest}`` of their canonical JSON, the
    largest first and inside objects before whole, until it fits: the record keeps every
    other value, and a value someone holds can still be checked against it. Otherwise the
    audit log would refuse the event and lose the record of the change. So is each object or
    list that would sit past :data:`MAX_DATA_NESTING` levels, digested at the last level.
    """
    encoded = canonical_json(data)
    if nested_deeper(data, encoded, MAX_DATA_NESTING):
        data = _capped(data, MAX_DATA_NESTING)
        encoded = canonical_json(data)
    if len(encoded) * 4 <= limit:
        return encoded
    size = _size(data)
    if size <= limit:
        return encoded
    shrunk, size = _shrunk(dict(data), size, limit)
    return canonical_json(shrunk if size <= limit else {"omitted": _omitted(data)})


def _capped(value: Any, room: int) -> Any:
    """``value`` with whatever would nest past ``room`` more levels digested."""
    if not isinstance(value, dict | list):
        return value
    if room <= 1:
        children = value.values() if isinstance(value, dict) else value
        return _omitted(value) if any(isinstance(c, dict | list) for c in children) else value
    if isinstance(value, dict):
        return {key: _capped(item, room - 1) for key, item in value.items()}
    return [_capped(item, room - 1) for item in value]


def _size(value: Any) -> int:
    """Bytes of ``value`` as the audit log measures it: its numbers reach it as doubles."""
    return len(canonical_json(_doubles(value)).encode())


def _doubles(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | dict | list):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _doubles(item) for key, item in value.items()}
    return [_doubles(item) for item in value]


def _omitted(value: Any) -> dict[str, Any]:
    encoded = canonical_json(value).encode()
    return {"omitted_bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}


def _shrunk(data: dict[str, Any], size: int, limit: int) -> tuple[dict[str, Any], int]:
    """``data`` of ``size`` bytes, its largest members shrunk or omitted to fit; its new size.

    Replacing a member changes the whole's size by exactly the change in the member's.
    """
    sizes = {key: _size(value) for key, value in data.items()}
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        if size <= limit:
            break
        value = data[key]
        replaced: Any = _omitted(value)
        if isinstance(value, dict) and value:
            inner, inner_size = _shrunk(
                dict(value), sizes[key], max(sizes[key] - (size - limit), 0)
            )
            if size - sizes[key] + inner_size <= limit:
                replaced = inner
        size += _size(replaced) - sizes[key]
        data[key] = replaced
    return data, size


def outbox_times_in_nanoseconds(conn: Connection) -> None:
    """Migrate an outbox whose ``time`` column held ISO 8601 text to ``time_ns``.

    The time of every row still waiting to be delivered is kept.
    """
    if "time" not in columns(conn, "outbox"):
        return
    waiting = conn.exec_driver_sql('SELECT seq, "time" FROM outbox').all()
    replace_column(conn, "outbox", "time", "time_ns", "0")
    if waiting:
        conn.execute(
            sa.text("UPDATE outbox SET time_ns = :moment WHERE seq = :seq"),
            [
                {"seq": seq, "moment": times.from_datetime(datetime.fromisoformat(text))}
                for seq, text in waiting
            ],
        )


def outbox_traceparent(conn: Connection) -> None:
    """Give an outbox made before events carried a ``traceparent`` its column (rows: none)."""
    add_column(conn, "outbox", "traceparent", "VARCHAR(64)")
