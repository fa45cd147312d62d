"""The one mapping from domain errors to gRPC status with rich error details."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from common import errors

_CODES: dict[type[errors.MeshError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


def grpc_code(error: errors.MeshError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


_M = TypeVar("_M", bound=Message)

Describe = Callable[[object], Message]
"""Turns a domain object an error carries in ``details`` into a message of the service's API."""


def no_details(detail: object) -> Message:
    """For services whose errors carry no details: one that does is a programming error."""
    raise TypeError(f"no message describes {type(detail).__name__}")


def to_status(
    error: errors.MeshError,
    *,
    domain: str,
    describe: Describe = no_details,
    request_id: str = "",
) -> grpc.Status:
    """Build the status a servicer aborts with: ErrorInfo always, BadRequest for violations.

    It also carries a message for each of the error's details, and with ``request_id`` a
    RequestInfo, so the caller can quote the id that the logs and traces of the call carry.
    """
    proto = status_proto(error, domain=domain, describe=describe)
    return rpc_status.to_status(_with_request(proto, request_id))


def _with_request(proto: status_pb2.Status, request_id: str) -> status_pb2.Status:
    if request_id:
        proto.details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id)))
    return proto


DETAIL_BYTES = 5 * 1024
"""Most bytes of field violations and other details one status carries.

The status travels in a trailer, and gRPC clients refuse trailers past 8 KiB by default
(``grpc.max_metadata_size``; Envoy's limit is larger). The message, the ErrorInfo and the
other trailers share that room. Past it the status says how many violations or details there
are and holds the first ones, rather than the call failing with no status at all.
"""


def status_proto(
    error: errors.MeshError, *, domain: str, describe: Describe = no_details
) -> status_pb2.Status:
    """The same status as a message, for responses that report an error per item."""
    code = grpc_code(error)
    room = _Room(DETAIL_BYTES)
    violations = room.fill(
        error_details_pb2.BadRequest.FieldViolation(
            field=v.field, description=v.description, reason=v.reason
        )
        for v in error.violations
    )
    extras = room.fill(_pack(describe(extra)) for extra in error.details)
    metadata = dict(error.metadata)
    message = error.message
    for kept, total, key, what in (
        (violations, error.violations, "violation_count", "field violations"),
        (extras, error.details, "detail_count", "error details"),
    ):
        if len(kept) < len(total):
            metadata[key] = str(len(total))
            message += (
                f"; the details hold the first {len(kept)} of {len(total)} {what},"
                " all that fit in one response"
            )
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=metadata))
    ]
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    details.extend(extras)
    return status_pb2.Status(code=code.value[0], message=message, details=details)


class _Room:
    """What is left of :data:`DETAIL_BYTES` as a status's details are added."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._kept = False

    def fill(self, messages: Iterable[_M]) -> list[_M]:
        """The first of ``messages`` that fit, and the status's first one even if it does not.

        It stops at the first that does not fit, so the ones kept are a prefix a caller can act
        on (fix, settle) before asking again.
        """
        out: list[_M] = []
        for message in messages:
            size = message.ByteSize() + 3  # its tag and length in the enclosing message
            if self._kept and size > self._left:
                break
            self._left -= size
            self._kept = True
            out.append(message)
        return out


def internal_status(*, domain: str, request_id: str = "") -> grpc.Status:
    """What callers see for an unexpected exception: no internals leak, the log has the rest.

    The ``request_id`` (a RequestInfo) finds the rest in the log.
    """
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=domain)
    proto = status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)]
    )
    return rpc_status.to_status(_with_request(proto, request_id))


_ERRORS: dict[grpc.StatusCode, type[errors.MeshError]] = {
    code: cls for cls, code in _CODES.items()
} | {grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable}
_DETAILS_KEY = "grpc-status-details-bin"


def from_rpc_error(error: grpc.RpcError) -> errors.MeshError:
    """A status from a peer as the domain error it stands for, with its reason and violations.

    The inverse of :func:`to_status` for callers of other services.
    """
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name
    reason, metadata, violations = code.name, {}, []
    for key, value in error.trailing_metadata() or ():
        if key != _DETAILS_KEY:
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [
                    errors.FieldViolation(v.field, v.description, v.reason)
                    for v in bad.field_violations
                ]
    cls = _ERRORS.get(code, errors.Internal)
    return cls(message, reason=reason, metadata=metadata, violations=violations)
