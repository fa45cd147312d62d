"""The one mapping from domain errors to statuses: a status always fits in a gRPC trailer."""

from __future__ import annotations

from google.rpc import error_details_pb2

from common.errors import FieldViolation, invalid
from common.status import VIOLATION_BYTES, status_proto


def _bad_request(status) -> error_details_pb2.BadRequest:  # type: ignore[no-untyped-def]
    bad = error_details_pb2.BadRequest()
    (packed,) = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    packed.Unpack(bad)
    return bad


def _info(status) -> error_details_pb2.ErrorInfo:  # type: ignore[no-untyped-def]
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info


def test_every_violation_is_listed_while_they_fit() -> None:
    violations = [FieldViolation(f"changes[{i}]", "required", "REQUIRED") for i in range(20)]
    status = status_proto(invalid(violations), domain="test.mesh")
    assert [v.field for v in _bad_request(status).field_violations] == [v.field for v in violations]
    assert "violation_count" not in _info(status).metadata
    assert "fit" not in status.message


def test_past_the_budget_the_first_violations_are_listed_and_the_count_is_said() -> None:
    violations = [
        FieldViolation(f"changes[{i}].object.object_type", "no object type Nope", "UNKNOWN_TYPE")
        for i in range(2000)
    ]
    status = status_proto(invalid(violations), domain="test.mesh")
    listed = _bad_request(status).field_violations
    assert 0 < len(listed) < 2000
    assert [v.field for v in listed] == [v.field for v in violations[: len(listed)]]
    assert _bad_request(status).ByteSize() <= VIOLATION_BYTES
    assert _info(status).metadata["violation_count"] == "2000"
    assert status.message.startswith("2000 problems")
    assert f"the first {len(listed)} of 2000" in status.message
    assert status.ByteSize() < 8 * 1024


def test_one_violation_larger_than_the_budget_is_still_listed() -> None:
    huge = FieldViolation("name", "x" * (VIOLATION_BYTES + 10), "INVALID_VALUE")
    status = status_proto(invalid([huge]), domain="test.mesh")
    assert [v.field for v in _bad_request(status).field_violations] == ["name"]
