"""Values in conflicts, diffs and resolutions: the API's JSON form out, the domain's in."""

from __future__ import annotations

import pytest
from google.protobuf import json_format, struct_pb2

from common import errors
from oms import convert
from oms.merge import Choice, Conflict, ConflictKind, Resolution
from oms.v1 import history_pb2

KEY = "object-types/Employee"


def value(message: struct_pb2.Value) -> object:
    return json_format.MessageToDict(message)


@pytest.mark.parametrize(
    ("path", "domain", "api"),
    [
        ("properties[age].data_type", {"base": "long"}, {"base": "BASE_TYPE_LONG"}),
        ("properties[age].data_type.base", "integer", "BASE_TYPE_INTEGER"),
        ("status", "DEPRECATED", "OBJECT_TYPE_STATUS_DEPRECATED"),
        (
            "properties[age]",
            {"api_name": "age", "data_type": {"base": "string"}},
            {"api_name": "age", "data_type": {"base": "BASE_TYPE_STRING"}},
        ),
        (
            "properties",
            [{"data_type": {"base": "text"}}],
            [{"data_type": {"base": "BASE_TYPE_TEXT"}}],
        ),
        ("description", "as is", "as is"),
        ("properties#order", ["b", "a"], ["b", "a"]),
        ("no_such_field.x", "kept", "kept"),
    ],
)
def test_a_conflict_shows_and_a_resolution_takes_the_api_form(
    path: str, domain: object, api: object
) -> None:
    shown = convert.conflict_to_message(
        Conflict(KEY, path, ConflictKind.BOTH_MODIFIED, None, domain, domain)
    )
    assert value(shown.ours) == api and value(shown.base) is None
    request = history_pb2.MergeResolution(
        resource=KEY,
        path=path,
        choice=history_pb2.RESOLUTION_CHOICE_VALUE,
        value=convert.to_value(api),
    )
    assert convert.resolutions_to_domain([request]) == [Resolution(KEY, path, Choice.VALUE, domain)]


def test_a_resolution_without_a_value_supplies_absence() -> None:
    request = history_pb2.MergeResolution(
        resource=KEY, path="", choice=history_pb2.RESOLUTION_CHOICE_THEIRS
    )
    assert convert.resolutions_to_domain([request]) == [Resolution(KEY, "", Choice.THEIRS, None)]


def test_a_resolution_needs_a_choice() -> None:
    with pytest.raises(errors.InvalidArgument) as refusal:
        convert.resolutions_to_domain([history_pb2.MergeResolution(resource=KEY)])
    assert [v.field for v in refusal.value.violations] == ["resolutions[0].choice"]
