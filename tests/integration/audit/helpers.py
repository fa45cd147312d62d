"""Reading rich error details off gRPC errors and acks."""

from __future__ import annotations

from google.rpc import error_details_pb2
from grpc_status import rpc_status


def _unpack(details):
    found = {}
    for detail in details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if detail.Is(cls.DESCRIPTOR):
                message = cls()
                detail.Unpack(message)
                found[cls.__name__] = message
    return found


def error_details(error):
    """ErrorInfo and BadRequest of a failed call, by class name."""
    return _unpack(rpc_status.from_call(error).details)


def status_details(status):
    """ErrorInfo and BadRequest of a google.rpc.Status (a per-event error)."""
    return _unpack(status.details)


def violated_fields(details):
    return {v.field for v in details["BadRequest"].field_violations}
