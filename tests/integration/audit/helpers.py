"""Reading rich error details off gRPC errors and acks; waiting for a condition."""

from __future__ import annotations

import time

import pytest
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


def eventually(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")
