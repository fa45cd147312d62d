"""Paged queries over the log with opaque page tokens.

Pages are cut by sequence, never by offset: a token holds the last sequence returned, so events
committed while a client pages (always at higher sequences) neither shift nor repeat anything.
The token also holds a digest of the filter and order, so it cannot be replayed against a
different query.
"""

from __future__ import annotations

from dataclasses import asdict

from audit.events import INT64_MAX, EventFilter, StoredEvent, check_type_filter
from audit.store import EventStore
from common import pages
from common.errors import FieldViolation, invalid

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
ORDERS = ("oldest", "newest")


def _query(selection: EventFilter, order: str) -> list[object]:
    return [asdict(selection), order]


def encode_token(last_sequence: int, selection: EventFilter, order: str) -> str:
    return pages.encode({"after": last_sequence}, query=_query(selection, order))


def decode_token(token: str, selection: EventFilter, order: str) -> int:
    """The last sequence of the previous page; INVALID_ARGUMENT if the token is not ours."""
    sequence = pages.decode(token, query=_query(selection, order)).get("after")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise pages.refuse()
    return sequence


def check_filter(selection: EventFilter) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    check_type_filter(violations, "type", selection.type)
    violations.extend(time_range_violations(selection.start_ns, selection.end_ns))
    for field, number in (
        ("start_sequence", selection.start_sequence),
        ("end_sequence", selection.end_sequence),
    ):
        if number < 0:
            violations.append(FieldViolation(field, "must not be negative", "INVALID_VALUE"))
    if selection.end_sequence and selection.end_sequence < selection.start_sequence:
        violations.append(
            FieldViolation("end_sequence", "must not be before start_sequence", "INVALID_RANGE")
        )
    return violations


def time_range_violations(start_ns: int | None, end_ns: int | None) -> list[FieldViolation]:
    """What is wrong with a ``start_time``/``end_time`` filter (None: not given).

    A time past what nanoseconds in 64 bits hold cannot be compared in the database.
    """
    violations = [
        FieldViolation(field, "must be between 1678 and 2262", "OUT_OF_RANGE")
        for field, value in (("start_time", start_ns), ("end_time", end_ns))
        if value is not None and not -INT64_MAX <= value <= INT64_MAX
    ]
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        violations.append(FieldViolation("end_time", "must be after start_time", "INVALID_RANGE"))
    return violations


def run_query(
    store: EventStore, selection: EventFilter, *, order: str, page_size: int, page_token: str
) -> pages.Page[StoredEvent]:
    """One page of matching events, validating the whole request first."""
    order = order or "oldest"
    violations = check_filter(selection)
    if order not in ORDERS:
        violations.append(FieldViolation("order", "must be 'oldest' or 'newest'", "INVALID_VALUE"))
    if page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative", "INVALID_VALUE"))
    if violations:
        raise invalid(violations)
    limit = pages.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    newest = order == "newest"
    last = decode_token(page_token, selection, order) if page_token else None
    if newest:
        found = store.find(selection, before=last, newest_first=True, limit=limit + 1)
    else:
        found = store.find(selection, after=last or 0, limit=limit + 1)
    return pages.cut(found, limit, lambda last: encode_token(last.sequence, selection, order))
