"""Conflicts settled by resolutions: ours, theirs or a value, each resolution used once."""

from __future__ import annotations

import pytest

from common import errors
from oms.merge import Choice, Resolution, check_resolutions, merge_snapshots
from oms.model import Resource
from tests.support.ontology import company, object_type, prop

KEY = "object-types/Employee"


def sides(ours: str, theirs: str) -> tuple[dict[str, Resource], ...]:
    """The company ontology, and each side changing Employee's description its own way."""
    base = company()
    employee = base[KEY]
    return (
        base,
        {**base, KEY: {**employee, "description": ours}},
        {**base, KEY: {**employee, "description": theirs}},
    )


@pytest.mark.parametrize(
    ("choice", "value", "expected"),
    [(Choice.OURS, None, "ours"), (Choice.THEIRS, None, "theirs"), (Choice.VALUE, "both", "both")],
)
def test_a_conflict_takes_the_value_its_resolution_chooses(
    choice: Choice, value: str | None, expected: str
) -> None:
    base, ours, theirs = sides("ours", "theirs")
    result = merge_snapshots(
        base, ours, theirs, resolutions=[Resolution(KEY, "description", choice, value)]
    )
    assert result.clean
    merged = {**ours, **result.changes}
    assert merged[KEY]["description"] == expected


def test_without_a_resolution_the_conflict_stays() -> None:
    base, ours, theirs = sides("ours", "theirs")
    result = merge_snapshots(base, ours, theirs)
    assert [(c.key, c.path) for c in result.conflicts] == [(KEY, "description")]
    with pytest.raises(errors.FailedPrecondition) as refusal:
        result.refuse("merging", {})
    assert refusal.value.reason == "MERGE_CONFLICT"


def test_a_resolution_that_settles_nothing_is_reported_by_position() -> None:
    base, ours, theirs = sides("ours", "theirs")
    resolutions = [
        Resolution(KEY, "description", Choice.OURS),
        Resolution(KEY, "display_name", Choice.OURS),
        Resolution("object-types/Office", "", Choice.THEIRS),
    ]
    result = merge_snapshots(base, ours, theirs, resolutions=resolutions)
    assert result.unmatched == (1, 2) and not result.clean
    with pytest.raises(errors.InvalidArgument) as refusal:
        result.refuse("merging", {})
    assert [v.field for v in refusal.value.violations] == ["resolutions[1]", "resolutions[2]"]


def test_a_deleted_item_can_be_kept_or_dropped() -> None:
    base = {KEY: object_type("Employee", prop("age"))}
    ours = {KEY: object_type("Employee", prop("age", description="years"))}
    theirs = {KEY: object_type("Employee")}
    path = "properties[age]"
    kept = merge_snapshots(base, ours, theirs, resolutions=[Resolution(KEY, path, Choice.OURS)])
    assert kept.clean and kept.changes == {}
    dropped = merge_snapshots(
        base, ours, theirs, resolutions=[Resolution(KEY, path, Choice.THEIRS)]
    )
    assert dropped.clean
    assert [p["api_name"] for p in dropped.changes[KEY]["properties"]] == ["id"]


def test_a_supplied_whole_resource_is_normalized_and_checked() -> None:
    base = {KEY: object_type("Employee")}
    ours: dict[str, Resource] = {}
    theirs = {KEY: object_type("Employee", description="changed")}
    value = {"api_name": "Employee", "primary_key": "id", "properties": [prop("id", required=True)]}
    result = merge_snapshots(
        base, ours, theirs, resolutions=[Resolution(KEY, "", Choice.VALUE, value)]
    )
    assert result.clean
    assert result.changes[KEY] == object_type("Employee")
    broken = {"api_name": "Employee", "primary_key": "id", "properties": [prop("id")]}
    invalid = merge_snapshots(
        base, ours, theirs, resolutions=[Resolution(KEY, "", Choice.VALUE, broken)]
    )
    assert invalid.violations and not invalid.clean
    with pytest.raises(errors.FailedPrecondition) as refusal:
        invalid.refuse("merging", {})
    assert refusal.value.reason == "MERGE_INVALID"


def test_resolutions_are_checked_before_they_meet_a_merge() -> None:
    with pytest.raises(errors.InvalidArgument) as refusal:
        check_resolutions(
            [
                Resolution(KEY, "description", Choice.OURS),
                Resolution(KEY, "description", Choice.THEIRS),
                Resolution(KEY, "", Choice.VALUE, {"api_name": "Other"}),
                Resolution("object-types/Office", "", Choice.VALUE, "not an object"),
                Resolution("object-types/Car", "", Choice.VALUE, None),
            ]
        )
    assert [(v.field, v.reason) for v in refusal.value.violations] == [
        ("resolutions[1]", "DUPLICATE"),
        ("resolutions[2].value", "INVALID_VALUE"),
        ("resolutions[3].value", "INVALID_VALUE"),
    ]


def test_a_conflicting_order_takes_the_chosen_order() -> None:
    base = {KEY: object_type("Employee", prop("a"), prop("b"), prop("c"))}
    ours = {KEY: object_type("Employee", prop("b"), prop("a"), prop("c"))}
    theirs = {KEY: object_type("Employee", prop("c"), prop("b"), prop("a"))}
    order = merge_snapshots(base, ours, theirs)
    assert [c.path for c in order.conflicts] == ["properties#order"]
    chosen = ["c", "a", "id", "b"]
    result = merge_snapshots(
        base, ours, theirs, resolutions=[Resolution(KEY, "properties#order", Choice.VALUE, chosen)]
    )
    assert result.clean
    assert [p["api_name"] for p in result.changes[KEY]["properties"]] == chosen
