"""Per-resource, per-field diffs; named items matched by name, not position."""

from __future__ import annotations

from oms.diff import ChangeType, FieldChange, diff_resource, diff_snapshots
from tests.support.ontology import company, object_type, prop


def test_identical_resources_have_no_diff() -> None:
    assert diff_resource(object_type("A"), object_type("A")) == []
    assert diff_resource(None, None) == []


def test_a_changed_field_reports_old_and_new() -> None:
    old, new = object_type("A"), object_type("A", description="now described")
    assert diff_resource(old, new) == [FieldChange("description", "", "now described")]


def test_properties_are_matched_by_name_whatever_their_position() -> None:
    old = object_type("A", prop("first"), prop("second", "integer"))
    new = object_type("A", prop("second", "long"), prop("first"), prop("third"))
    new["properties"] = [new["properties"][i] for i in (1, 0, 2, 3)]
    changes = diff_resource(old, new)
    assert [c.path for c in changes] == [
        "properties[second].data_type",
        "properties[third]",
        "properties#order",
    ]
    assert changes[0].old == {"base": "integer", "array": False}
    assert changes[0].new == {"base": "long", "array": False}
    assert changes[1].old is None and changes[1].new["api_name"] == "third"


def test_a_removed_property_and_a_reordering_are_reported() -> None:
    old = object_type("A", prop("a"), prop("b"), prop("c"))
    new = object_type("A", prop("c"), prop("b"))
    changes = {c.path: c for c in diff_resource(old, new)}
    assert changes["properties[a]"].new is None and changes["properties[a]"].old["api_name"] == "a"
    assert changes["properties#order"] == FieldChange(
        "properties#order", ["id", "b", "c"], ["id", "c", "b"]
    )


def test_added_and_deleted_resources_carry_every_field() -> None:
    resource = object_type("A")
    added = diff_resource(None, resource)
    assert {c.path: c.new for c in added} == resource
    assert all(c.old is None for c in added)
    deleted = diff_resource(resource, None)
    assert {c.path: c.old for c in deleted} == resource


def test_diff_snapshots_classifies_and_sorts() -> None:
    old = company()
    new = dict(old)
    del new["link-types/worksIn"]
    new["object-types/Car"] = object_type("Car")
    new["object-types/Office"] = object_type("Office", prop("city"), prop("zip"))
    result = diff_snapshots(old, new)
    assert [(r.key, r.change_type) for r in result] == [
        ("link-types/worksIn", ChangeType.DELETED),
        ("object-types/Car", ChangeType.ADDED),
        ("object-types/Office", ChangeType.MODIFIED),
    ]
    assert [f.path for f in result[2].fields] == ["properties[zip]"]


def test_diff_snapshots_compares_only_the_given_keys() -> None:
    old = company()
    new = {**old, "object-types/Car": object_type("Car"), "object-types/Van": object_type("Van")}
    assert [
        r.key for r in diff_snapshots(old, new, keys=["object-types/Van", "object-types/Office"])
    ] == ["object-types/Van"]


def test_malformed_named_lists_are_compared_whole() -> None:
    old = {**object_type("A"), "properties": "oops"}
    new = object_type("A")
    assert [c.path for c in diff_resource(old, new)] == ["properties"]
