"""The one mapping from domain errors to statuses: a status always fits in a gRPC trailer."""

from __future__ import annotations

from google.rpc import error_details_pb2

from common.errors import FailedPrecondition, FieldViolation, invalid
from common.status import DETAIL_BYTES, status_proto


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
    assert _bad_request(status).ByteSize() <= DETAIL_BYTES
    assert _info(status).metadata["violation_count"] == "2000"
    assert status.message.startswith("2000 problems")
    assert f"the first {len(listed)} of 2000" in status.message
    assert status.ByteSize() < 8 * 1024


def test_one_violation_larger_than_the_budget_is_still_listed() -> None:
    huge = FieldViolation("name", "x" * (DETAIL_BYTES + 10), "INVALID_VALUE")
    status = status_proto(invalid([huge]), domain="test.mesh")
    assert [v.field for v in _bad_request(status).field_violations] == ["name"]


def _resource(detail: object) -> error_details_pb2.ResourceInfo:
    return error_details_pb2.ResourceInfo(resource_type="conflict", resource_name=str(detail))


def test_past_the_budget_the_first_details_are_held_and_the_count_is_said() -> None:
    error = FailedPrecondition(
        "merge conflicts in 500 places",
        reason="MERGE_CONFLICT",
        details=[f"objects/Employee/{i}#name" for i in range(500)],
    )
    status = status_proto(error, domain="test.mesh", describe=_resource)
    held = [d for d in status.details if d.Is(error_details_pb2.ResourceInfo.DESCRIPTOR)]
    assert 0 < len(held) < 500
    names = []
    for packed in held:
        info = error_details_pb2.ResourceInfo()
        packed.Unpack(info)
        names.append(info.resource_name)
    assert names == [f"objects/Employee/{i}#name" for i in range(len(held))]
    assert _info(status).metadata["detail_count"] == "500"
    assert f"the first {len(held)} of 500 error details" in status.message
    assert status.ByteSize() < 8 * 1024


def test_violations_and_details_share_one_budget() -> None:
    error = FailedPrecondition(
        "both",
        reason="TEST",
        violations=[FieldViolation(f"f{i}", "d" * 60, "R") for i in range(200)],
        details=["x" * 40 for _ in range(200)],
    )
    status = status_proto(error, domain="test.mesh", describe=_resource)
    assert status.ByteSize() < 8 * 1024
    metadata = _info(status).metadata
    assert metadata["violation_count"] == "200"
    assert metadata["detail_count"] == "200"
