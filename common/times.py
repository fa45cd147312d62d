"""The mesh's one way to hold a moment, and every conversion to and from it.

A moment is an ``int`` of nanoseconds since the Unix epoch, UTC: exact (a protobuf Timestamp
converts both ways without loss, which the audit chain's hashes rely on), ordered and cheap
to compare and store (a 64-bit column, good until 2262). Names of such values end in ``_ns``.

Durations that operators configure stay in seconds (``MESH_*_SECONDS``) and become
nanoseconds with :func:`seconds` where they meet a moment. The JWT claims ``iat``, ``nbf`` and
``exp`` are whole seconds by RFC 7519 and are converted where tokens are minted and read.
Intervals a process measures for itself (how long since it last fetched something) use
``time.monotonic()`` instead, which no wall-clock step can move.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

SECOND = 1_000_000_000
"""Nanoseconds in a second."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> int:
    """The current moment, from the system's wall clock."""
    return time.time_ns()


def seconds(amount: float) -> int:
    """A duration of ``amount`` seconds, in nanoseconds."""
    return round(amount * SECOND)


def whole_seconds(moment_ns: int) -> int:
    """The moment in whole seconds since the epoch, rounded down (a JWT ``NumericDate``)."""
    return moment_ns // SECOND


def to_timestamp(moment_ns: int) -> timestamp_pb2.Timestamp:
    """The moment as a protobuf Timestamp, exactly."""
    whole, nanos = divmod(moment_ns, SECOND)
    return timestamp_pb2.Timestamp(seconds=whole, nanos=nanos)


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> int:
    """A protobuf Timestamp as a moment, exactly (the message is not checked for range)."""
    return int(stamp.seconds) * SECOND + int(stamp.nanos)


def from_datetime(moment: datetime) -> int:
    """An aware datetime as a moment (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def to_rfc3339(moment_ns: int, *, digits: int = 9) -> str:
    """The moment as RFC 3339 text in UTC with ``digits`` (0 to 9) fractional digits.

    The fraction is rounded down: ``2026-12-01T09:30:00.123Z`` for ``digits=3``. Every log
    line's ``ts`` goes through here, so it formats with ``time.strftime``, the cheapest way.
    """
    whole, nanos = divmod(moment_ns, SECOND)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if digits:
        text += "." + f"{nanos:09d}"[:digits]
    return text + "Z"


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z")


def from_rfc3339(text: str) -> int:
    """The moment that :func:`to_rfc3339` wrote, exactly; ValueError for any other text."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    whole = calendar.timegm(time.strptime(match[1], "%Y-%m-%dT%H:%M:%S"))
    return whole * SECOND + int((match[2] or "0").ljust(9, "0"))
