"""Domain errors: what went wrong, in terms a caller can act on, free of gRPC types.

Raise a subclass of :class:`MeshError` anywhere below a servicer; the error interceptor turns it
into a gRPC status with ``google.rpc.ErrorInfo`` (and ``BadRequest`` for field violations)
through the one mapping in :mod:`common.status`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request, reported all together rather than first-only."""

    field: str
    description: str
    reason: str = ""


class MeshError(Exception):
    """Base of every error the mesh reports to callers on purpose."""

    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Iterable[FieldViolation] = (),
        details: Sequence[object] = (),
    ) -> None:
        """``details`` are domain objects that say more (a merge conflict, a breaking change).

        The service's edge turns each into a message of its API (see :mod:`common.status`).
        """
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)
        self.details = tuple(details)


class InvalidArgument(MeshError):
    """The request is wrong whatever the state it meets; its violations say which fields."""

    default_reason = "INVALID_ARGUMENT"


class NotFound(MeshError):
    """What the request names does not exist (a user, a resource, a branch, a commit, an event)."""

    default_reason = "NOT_FOUND"


class AlreadyExists(MeshError):
    """What the request would create exists already, or an event id has other content recorded."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(MeshError):
    """The request is sound but the current state refuses it (a merge conflict, the last admin)."""

    default_reason = "FAILED_PRECONDITION"


class Aborted(MeshError):
    """A concurrent change won (stale etag, moved branch head); the caller may retry."""

    default_reason = "ABORTED"


class OutOfRange(MeshError):
    """A position past the end of what exists (a start sequence beyond the head of the log)."""

    default_reason = "OUT_OF_RANGE"


class Unauthenticated(MeshError):
    """The caller is not proven: wrong credentials, a disabled account, or a refused token."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(MeshError):
    """The caller is known but may not do this (a missing permission, an admin-only change)."""

    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(MeshError):
    """A limit of the server was reached (too many open streams, a stream too far behind)."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(MeshError):
    """The service cannot answer now (stopping, overloaded, storage full or down); retry later."""

    default_reason = "UNAVAILABLE"


class Internal(MeshError):
    """A fault of the service, not of the request (a corrupt store); the caller cannot fix it."""

    default_reason = "INTERNAL"


MESSAGE_VIOLATIONS = 10
"""How many violations a message spells out; every one is in the BadRequest details."""


def invalid(violations: Sequence[FieldViolation], message: str | None = None) -> InvalidArgument:
    """An InvalidArgument carrying every violation; the message lists them, or says how many.

    Past :data:`MESSAGE_VIOLATIONS` the message names the count and where the list is, rather
    than cutting it off: a reader must not take a partial list for the whole.
    """
    if message is None:
        listed = "; ".join(f"{v.field}: {v.description}" for v in violations)
        if len(violations) > MESSAGE_VIOLATIONS:
            listed = f"{len(violations)} problems, each a field violation in the details"
        message = listed
    return InvalidArgument(message or "invalid request", violations=violations)


def quoted(value: object) -> str:
    """A value as a message shows it: in the API's JSON form (``"x"``, ``["a"]``, ``true``).

    Python's ``repr`` (``'x'``, ``True``) is not what any client sent or will send.
    """
    return json.dumps(value, ensure_ascii=False, default=str)
