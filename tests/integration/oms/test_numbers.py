"""Numbers JSON cannot hold (NaN, Infinity), which a gRPC client can send in a Struct or Value.

Every such field is refused by name with NOT_FINITE, before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from oms.v1 import action_service_pb2 as a
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import object_service_pb2 as o
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import details, reason
from tests.support.oms import Client, object_type, prop


def _struct(**values: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _value(number: float) -> struct_pb2.Value:
    return struct_pb2.Value(number_value=number)


def _criterion(number: float) -> r.ActionType:
    return r.ActionType(
        api_name="raise",
        display_name="Raise",
        parameters=[
            r.ActionParameter(api_name="by", data_type=r.DataType(base=r.BASE_TYPE_DOUBLE))
        ],
        submission_criteria=[
            r.SubmissionCriterion(parameter="by", operator="<", value=_value(number))
        ],
    )


CALLS: dict[str, tuple[str, str, Callable[[float], Message]]] = {
    "CreateObject": (
        "object.properties.score",
        "objects",
        lambda n: o.CreateObjectRequest(
            branch="main",
            object_type="Employee",
            object=o.OntologyObject(properties=_struct(id="e1", score=n)),
        ),
    ),
    "UpdateObject": (
        "object.properties.score",
        "objects",
        lambda n: o.UpdateObjectRequest(
            branch="main",
            object_type="Employee",
            primary_key="e0",
            object=o.OntologyObject(properties=_struct(score=[1, {"deeper": n}])),
        ),
    ),
    "ExecuteAction": (
        "parameters.by",
        "actions",
        lambda n: a.ExecuteActionRequest(
            branch="main", action_type="raise", parameters=_struct(by=n)
        ),
    ),
    "CreateActionType": (
        "action_type.submission_criteria[0].value",
        "schema",
        lambda n: ss.CreateActionTypeRequest(branch="main", action_type=_criterion(n)),
    ),
    "CommitChanges": (
        "changes[1].upsert.action_type.submission_criteria[0].value",
        "schema",
        lambda n: ss.CommitChangesRequest(
            branch="main",
            changes=[
                ss.Change(object=o.OntologyObject(object_type="Employee")),
                ss.Change(upsert=r.Resource(action_type=_criterion(n))),
            ],
        ),
    ),
    "MergeBranch": (
        "resolutions[0].value",
        "branches",
        lambda n: bs.MergeBranchRequest(
            branch="dev",
            resolutions=[
                h.MergeResolution(
                    resource="object-types/Employee",
                    path="display_name",
                    choice=h.RESOLUTION_CHOICE_VALUE,
                    value=_value(n),
                )
            ],
        ),
    ),
}


@pytest.fixture
def employees(oms: Client) -> Client:
    oms.create("main", object_type("Employee", prop("score", r.BASE_TYPE_DOUBLE)))
    oms.objects.CreateObject(
        o.CreateObjectRequest(
            branch="main",
            object_type="Employee",
            object=o.OntologyObject(properties=_struct(id="e0", score=1.5)),
        ),
        metadata=oms.admin,
        timeout=10,
    )
    oms.branch("dev")
    return oms


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("method", list(CALLS))
def test_a_number_json_cannot_hold_is_refused_by_field(
    employees: Client, method: str, number: float
) -> None:
    field, stub, request = CALLS[method]
    head = employees.head("main")
    with pytest.raises(grpc.RpcError) as caught:
        getattr(getattr(employees, stub), method)(
            request(number), metadata=employees.admin, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert reason(caught.value) == "INVALID_ARGUMENT"
    violations = details(caught.value)["BadRequest"][0].field_violations
    assert [(v.field, v.reason) for v in violations] == [(field, "NOT_FINITE")]
    assert employees.head("main") == head
