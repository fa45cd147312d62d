"""The rich errors of the mesh as tests read them.

A reason, the fields at fault, and every detail message of a failed call or of a per-item
``google.rpc.Status``.
"""

from __future__ import annotations

from collections import defaultdict

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from oms.v1 import history_pb2

_MESSAGES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.LocalizedMessage,
        error_details_pb2.RequestInfo,
        history_pb2.MergeConflict,
        history_pb2.ValidationFinding,
    )
}

Refusal = grpc.RpcError | status_pb2.Status


def _status(error: Refusal) -> status_pb2.Status:
    if isinstance(error, status_pb2.Status):
        return error
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status in {error}"
    return status


def details(error: Refusal) -> dict[str, list[Message]]:
    """Every detail the error carries, unpacked, by message name (``"ErrorInfo"``, ...)."""
    found: dict[str, list[Message]] = defaultdict(list)
    for packed in _status(error).details:
        cls = _MESSAGES[packed.TypeName()]
        message = cls()
        packed.Unpack(message)
        found[cls.__name__].append(message)
    return dict(found)


def error_info(error: Refusal) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo (every error of the mesh carries exactly one)."""
    (info,) = details(error)["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    return info


def reason(error: Refusal) -> str:
    return str(error_info(error).reason)


def violated_fields(error: Refusal) -> list[str]:
    """The fields of the BadRequest, in the order reported (none without one)."""
    found = details(error).get("BadRequest", [])
    return [v.field for bad in found for v in bad.field_violations]  # type: ignore[attr-defined]


def rest_details(body: dict[str, object], name: str) -> list[dict[str, object]]:
    """The details of a REST error body whose type ends in ``name`` (``"MergeConflict"``)."""
    found = body.get("details", [])
    assert isinstance(found, list)
    return [d for d in found if str(d.get("@type", "")).endswith(f".{name}")]


def rest_reason(body: dict[str, object]) -> str:
    """The ErrorInfo reason of a REST error body."""
    (info,) = rest_details(body, "ErrorInfo")
    return str(info["reason"])
