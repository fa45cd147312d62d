"""Three-way merge: field by field, named items by name, and the merged ontology checked."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oms.checks import check_changes
from oms.merge import Conflict, ConflictKind, merge_resource, merge_snapshots
from oms.model import Overlay, Resource
from tests.support.ontology import company, interface, link_type, object_type, prop


def props(resource: Resource | None) -> list[str]:
    assert resource is not None
    return [p["api_name"] for p in resource["properties"]]


def test_changes_to_different_fields_combine() -> None:
    base = object_type("A", prop("age", "integer"))
    ours = object_type("A", prop("age", "long"))
    theirs = object_type("A", prop("age", "integer", description="years"), description="people")
    merged, conflicts = merge_resource(base, ours, theirs)
    assert conflicts == []
    assert merged == object_type(
        "A", prop("age", "long", description="years"), description="people"
    )


def test_properties_added_on_both_sides_are_all_kept() -> None:
    base = object_type("A", prop("a"))
    ours = object_type("A", prop("a"), prop("mine"))
    theirs = object_type("A", prop("theirs"), prop("a"))
    merged, conflicts = merge_resource(base, ours, theirs)
    assert conflicts == []
    assert props(merged) == ["id", "theirs", "a", "mine"]


def test_a_reordering_on_one_side_is_kept() -> None:
    base = object_type("A", prop("a"), prop("b"))
    ours = object_type("A", prop("a"), prop("b"), prop("c"))
    theirs = object_type("A", prop("b"), prop("a"))
    merged, _ = merge_resource(base, ours, theirs)
    assert props(merged) == ["id", "b", "a", "c"]


def test_different_reorderings_conflict() -> None:
    base = object_type("A", prop("a"), prop("b"), prop("c"))
    ours = object_type("A", prop("b"), prop("a"), prop("c"))
    theirs = object_type("A", prop("a"), prop("c"), prop("b"))
    _, conflicts = merge_resource(base, ours, theirs, key="object-types/A")
    assert [(c.path, c.kind) for c in conflicts] == [
        ("properties#order", ConflictKind.BOTH_MODIFIED)
    ]


def test_the_same_field_changed_differently_conflicts_with_all_three_values() -> None:
    base = object_type("A", prop("age", "integer"))
    ours = object_type("A", prop("age", "long"))
    theirs = object_type("A", prop("age", "double"))
    merged, conflicts = merge_resource(base, ours, theirs, key="object-types/A")
    assert conflicts == [
        Conflict(
            "object-types/A",
            "properties[age].data_type",
            ConflictKind.BOTH_MODIFIED,
            {"base": "integer", "array": False},
            {"base": "long", "array": False},
            {"base": "double", "array": False},
        )
    ]
    assert merged == ours


def test_a_property_modified_on_one_side_and_deleted_on_the_other_conflicts() -> None:
    base = object_type("A", prop("age", "integer"))
    ours = object_type("A")
    theirs = object_type("A", prop("age", "long"))
    _, conflicts = merge_resource(base, ours, theirs)
    assert [(c.path, c.kind, c.ours) for c in conflicts] == [
        ("properties[age]", ConflictKind.MODIFIED_DELETED, None)
    ]


def test_a_property_deleted_on_one_side_and_untouched_on_the_other_goes() -> None:
    base = object_type("A", prop("age"), prop("name"))
    ours = object_type("A", prop("age"), prop("name", description="x"))
    theirs = object_type("A", prop("name"))
    merged, conflicts = merge_resource(base, ours, theirs)
    assert conflicts == [] and props(merged) == ["id", "name"]


def test_a_resource_deleted_on_one_side_and_modified_on_the_other_conflicts() -> None:
    base = object_type("A")
    merged, conflicts = merge_resource(base, None, object_type("A", description="x"), key="k")
    assert merged is None  # ours, held at the conflict; never to be written
    assert [(c.path, c.kind, c.ours) for c in conflicts] == [
        ("", ConflictKind.MODIFIED_DELETED, None)
    ]
    _, conflicts = merge_resource(base, object_type("A", description="x"), None)
    assert [c.kind for c in conflicts] == [ConflictKind.MODIFIED_DELETED]
    assert merge_resource(base, None, base) == (None, [])
    assert merge_resource(base, base, None) == (None, [])


def test_a_resource_added_on_both_sides_merges_as_from_an_empty_base() -> None:
    ours = object_type("A", prop("a"), description="mine")
    theirs = object_type("A", prop("a", "integer"), prop("b"), description="theirs")
    merged, conflicts = merge_resource(None, ours, theirs)
    assert props(merged) == ["id", "a", "b"]
    assert sorted((c.path, c.kind) for c in conflicts) == [
        ("description", ConflictKind.BOTH_ADDED),
        ("properties[a].data_type", ConflictKind.BOTH_ADDED),
    ]
    assert conflicts[0].base is None
    same, none = merge_resource(None, ours, copy.deepcopy(ours))
    assert same == ours and none == []


def test_set_fields_combine_additions_and_removals() -> None:
    base = object_type("A", prop("g", enum_values=["a", "b", "c"]))
    ours = object_type("A", prop("g", enum_values=["a", "b", "c", "d"]))
    theirs = object_type("A", prop("g", enum_values=["b", "c", "e"]))
    merged, conflicts = merge_resource(base, ours, theirs)
    assert conflicts == []
    assert merged is not None
    assert merged["properties"][1]["enum_values"] == ["b", "c", "d", "e"]


def test_action_rules_edited_on_both_sides_conflict_rather_than_duplicate() -> None:
    snap = company()
    base = snap["action-types/relocate"]
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["rules"][1]["values"] = {}
    theirs["rules"] = theirs["rules"][:1]
    _, conflicts = merge_resource(base, ours, theirs)
    assert [c.path for c in conflicts] == ["rules"]


def test_merge_snapshots_returns_only_what_ours_lacks() -> None:
    base = company()
    ours = {**base, "object-types/Car": object_type("Car")}
    theirs = {**base, "object-types/Van": object_type("Van")}
    del theirs["action-types/hire"]
    result = merge_snapshots(base, ours, theirs)
    assert result.clean
    assert result.changes == {"action-types/hire": None, "object-types/Van": object_type("Van")}


def test_merge_snapshots_reads_only_the_given_keys() -> None:
    base = company()
    ours = {**base, "object-types/Car": object_type("Car")}
    theirs = {
        **base,
        "object-types/Van": object_type("Van"),
        "object-types/Bus": object_type("Bus"),
    }
    result = merge_snapshots(base, ours, theirs, keys=["object-types/Car", "object-types/Van"])
    assert list(result.changes) == ["object-types/Van"]


def test_a_merge_that_would_leave_a_dangling_reference_reports_violations() -> None:
    base = company()
    ours = {**base, "link-types/visits": link_type("visits", "Employee", "Office")}
    theirs = {
        k: v
        for k, v in base.items()
        if k not in ("object-types/Office", "link-types/worksIn")
        and not k.startswith("action-types/")
    }
    result = merge_snapshots(base, ours, theirs)
    assert result.conflicts == ()
    assert not result.clean
    assert set(result.violations) == {"link-types/visits"}
    assert result.violations["link-types/visits"][0].reason == "UNRESOLVED_REFERENCE"


def test_conflicting_merges_report_every_conflict() -> None:
    base = company()
    ours = {**base, "object-types/Office": object_type("Office", prop("city", "text"))}
    theirs = {
        **base,
        "object-types/Office": object_type("Office", prop("city", description="x"), prop("zip")),
    }
    theirs["object-types/Office"]["properties"][1]["data_type"]["base"] = "integer"
    ours["object-types/Car"] = object_type("Car", prop("a"))
    theirs["object-types/Car"] = object_type("Car", prop("a", "integer"))
    result = merge_snapshots(base, ours, theirs)
    assert not result.clean
    assert [(c.key, c.path, c.kind) for c in result.conflicts] == [
        ("object-types/Car", "properties[a].data_type", ConflictKind.BOTH_ADDED),
        ("object-types/Office", "properties[city].data_type", ConflictKind.BOTH_MODIFIED),
    ]


# -- property-based tests ---------------------------------------------------------------

Edit = tuple[Any, ...]
"""("set_type_field", key, field, value) | ("set_prop_field", key, prop, field, value) |
("add_prop", key, name) | ("del_prop", key, name) | ("add_type", key) | ("del_type", key)"""

TYPES = [f"object-types/T{i}" for i in range(4)]
PROPS = ["p0", "p1", "p2"]


def base_snapshot() -> dict[str, Resource]:
    return {key: object_type(key.split("/")[1], *(prop(p) for p in PROPS)) for key in TYPES}


def location(edit: Edit) -> tuple[str, ...]:
    kind, key, *rest = edit
    if kind in ("add_type", "del_type"):
        return (key,)
    if kind == "set_type_field":
        return (key, rest[0])
    if kind in ("add_prop", "del_prop"):
        return (key, "properties", rest[0])
    return (key, "properties", rest[0], rest[1])


def overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


VALUES = {
    "description": st.sampled_from(["x", "y", "z"]),
    "display_name": st.sampled_from(["X", "Y"]),
    "status": st.sampled_from(["EXPERIMENTAL", "DEPRECATED"]),
}
PROP_VALUES = {
    "description": st.sampled_from(["x", "y"]),
    "required": st.booleans(),
    "unique": st.booleans(),
    "data_type": st.sampled_from(  # string-like, so that any enum_values stay valid
        [{"base": "text", "array": False}, {"base": "string", "array": True}]
    ),
    "enum_values": st.sampled_from([["a"], ["a", "b"]]),
}


@st.composite
def edit(draw: st.DrawFn, side: str) -> Edit:
    key = draw(st.sampled_from(TYPES))
    kind = draw(
        st.sampled_from(
            [
                "set_type_field",
                "set_prop_field",
                "set_prop_field",
                "add_prop",
                "del_prop",
                "add_type",
                "del_type",
            ]
        )
    )
    if kind == "set_type_field":
        field = draw(st.sampled_from(sorted(VALUES)))
        return (kind, key, field, draw(VALUES[field]))
    if kind == "set_prop_field":
        field = draw(st.sampled_from(sorted(PROP_VALUES)))
        return (kind, key, draw(st.sampled_from(PROPS)), field, draw(PROP_VALUES[field]))
    if kind == "add_prop":
        return (kind, key, f"{side}{draw(st.integers(0, 2))}")
    if kind == "del_prop":
        return (kind, key, draw(st.sampled_from(PROPS)))
    if kind == "add_type":
        return (kind, f"object-types/{side.upper()}{draw(st.integers(0, 2))}")
    return (kind, key)


def apply(snapshot: dict[str, Resource], edits: list[Edit]) -> dict[str, Resource]:
    out = copy.deepcopy(snapshot)
    for kind, key, *rest in edits:
        if kind == "add_type":
            out[key] = object_type(key.split("/")[1], prop("q"))
        elif kind == "del_type":
            del out[key]
        elif kind == "set_type_field":
            out[key][rest[0]] = rest[1]
        elif kind == "add_prop":
            out[key]["properties"].append(object_type("X", prop(rest[0]))["properties"][1])
        elif kind == "del_prop":
            out[key]["properties"] = [p for p in out[key]["properties"] if p["api_name"] != rest[0]]
        else:
            target = next(p for p in out[key]["properties"] if p["api_name"] == rest[0])
            target[rest[1]] = copy.deepcopy(rest[2])
    return out


@st.composite
def disjoint_edits(draw: st.DrawFn) -> tuple[list[Edit], list[Edit]]:
    """Edits of two sides that touch no common location (and none twice)."""
    used: list[tuple[str, ...]] = []
    sides: dict[str, list[Edit]] = {"o": [], "t": []}
    for side in draw(st.lists(st.sampled_from(["o", "t"]), max_size=8)):
        candidate = draw(edit(side))
        where = location(candidate)
        if any(overlaps(where, other) for other in used):
            continue
        used.append(where)
        sides[side].append(candidate)
    return sides["o"], sides["t"]


def canonical(snapshot: Any) -> dict[str, Any]:
    """A snapshot with named lists keyed by name, for order-insensitive comparison."""
    out = {}
    for key, resource in dict(snapshot).items():
        resource = dict(resource)
        resource["properties"] = {p["api_name"]: p for p in resource["properties"]}
        out[key] = resource
    return out


@settings(max_examples=100, deadline=None)
@given(disjoint_edits())
def test_merging_non_overlapping_changes_gives_the_union_of_both(
    edits: tuple[list[Edit], list[Edit]],
) -> None:
    ours_edits, theirs_edits = edits
    base = base_snapshot()
    ours, theirs = apply(base, ours_edits), apply(base, theirs_edits)
    result = merge_snapshots(base, ours, theirs)
    assert result.conflicts == ()
    assert result.violations == {}
    merged = Overlay(ours, result.changes)
    assert canonical(merged) == canonical(apply(base, ours_edits + theirs_edits))


@settings(max_examples=100, deadline=None)
@given(disjoint_edits())
def test_merge_is_symmetric_up_to_property_order(edits: tuple[list[Edit], list[Edit]]) -> None:
    ours_edits, theirs_edits = edits
    base = base_snapshot()
    ours, theirs = apply(base, ours_edits), apply(base, theirs_edits)
    forward, backward = merge_snapshots(base, ours, theirs), merge_snapshots(base, theirs, ours)
    assert forward.clean and backward.clean
    assert canonical(Overlay(ours, forward.changes)) == canonical(Overlay(theirs, backward.changes))


@settings(max_examples=100, deadline=None)
@given(st.lists(edit("o"), max_size=6))
def test_identical_changes_never_conflict(edits: list[Edit]) -> None:
    base = base_snapshot()
    used: list[tuple[str, ...]] = []
    applicable = []
    for candidate in edits:
        if not any(overlaps(location(candidate), other) for other in used):
            used.append(location(candidate))
            applicable.append(candidate)
    ours, theirs = apply(base, applicable), apply(base, applicable)
    result = merge_snapshots(base, ours, theirs)
    assert result.clean
    assert result.changes == {}


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from(TYPES),
    name=st.sampled_from(PROPS),
    field=st.sampled_from(["description", "display_name"]),
    values=st.lists(st.sampled_from(["x", "y", "z"]), min_size=2, max_size=2, unique=True),
    others=disjoint_edits(),
)
def test_changing_one_field_differently_on_both_sides_reports_that_conflict(
    key: str, name: str, field: str, values: list[Any], others: tuple[list[Edit], list[Edit]]
) -> None:
    conflict_at = (key, "properties", name, field)
    ours_edits = [e for e in others[0] if not overlaps(location(e), conflict_at)]
    theirs_edits = [e for e in others[1] if not overlaps(location(e), conflict_at)]
    base = base_snapshot()
    ours = apply(base, [*ours_edits, ("set_prop_field", key, name, field, values[0])])
    theirs = apply(base, [*theirs_edits, ("set_prop_field", key, name, field, values[1])])
    result = merge_snapshots(base, ours, theirs)
    assert not result.clean
    assert [(c.key, c.path, c.kind, c.ours, c.theirs) for c in result.conflicts] == [
        (key, f"properties[{name}].{field}", ConflictKind.BOTH_MODIFIED, values[0], values[1])
    ]


@settings(max_examples=50, deadline=None)
@given(key=st.sampled_from(TYPES), change=edit("t"))
def test_deleting_what_the_other_side_changed_conflicts(key: str, change: Edit) -> None:
    base = base_snapshot()
    theirs = apply(base, [change])
    if change[0] in ("add_type", "del_type") or theirs[key] == base[key]:
        theirs = apply(base, [("set_type_field", key, "description", "changed")])
    ours = apply(base, [("del_type", key)])
    result = merge_snapshots(base, ours, theirs)
    assert [(c.key, c.kind) for c in result.conflicts] == [(key, ConflictKind.MODIFIED_DELETED)]


def test_a_merge_is_not_blamed_for_problems_ours_already_had() -> None:
    base = company()
    ours = {**base, "link-types/owns": link_type("owns", "Employee", "Car")}  # dangling already
    theirs = {
        **base,
        "object-types/Employee": {**base["object-types/Employee"], "description": "x"},
    }
    result = merge_snapshots(base, ours, theirs)
    assert result.clean
    assert list(result.changes) == ["object-types/Employee"]


@st.composite
def side_edits(draw: st.DrawFn, side: str) -> list[Edit]:
    """Edits of one side that do not trip over each other (the other side may overlap)."""
    used: list[tuple[str, ...]] = []
    out: list[Edit] = []
    for candidate in draw(st.lists(edit(side), max_size=5)):
        if not any(overlaps(location(candidate), other) for other in used):
            used.append(location(candidate))
            out.append(candidate)
    return out


@settings(max_examples=100, deadline=None)
@given(side_edits("o"), side_edits("o"))
def test_every_reported_conflict_is_genuine_and_a_clean_merge_keeps_both_sides(
    ours_edits: list[Edit], theirs_edits: list[Edit]
) -> None:
    base = base_snapshot()
    ours, theirs = apply(base, ours_edits), apply(base, theirs_edits)
    result = merge_snapshots(base, ours, theirs)
    for c in result.conflicts:
        assert c.ours != c.theirs
        if c.kind is ConflictKind.BOTH_MODIFIED:
            assert c.base not in (c.ours, c.theirs)
        elif c.kind is ConflictKind.MODIFIED_DELETED:
            assert None in (c.ours, c.theirs) and c.base is not None
        else:
            assert c.base is None
    if result.clean:
        merged = Overlay(ours, result.changes)
        for key in set(base) | set(ours) | set(theirs):
            if theirs.get(key) == base.get(key):
                assert merged.get(key) == ours.get(key)
            elif ours.get(key) == base.get(key):
                assert merged.get(key) == theirs.get(key)


def test_a_merge_that_would_close_an_inheritance_cycle_reports_it() -> None:
    base = {"interfaces/A": interface("A"), "interfaces/B": interface("B")}
    ours = {**base, "interfaces/A": interface("A", extends=("B",))}
    theirs = {**base, "interfaces/B": interface("B", extends=("A",))}
    result = merge_snapshots(base, ours, theirs)
    assert result.conflicts == ()
    assert [v.reason for v in result.violations["interfaces/B"]] == ["INHERITANCE_CYCLE"]


def test_a_merge_whose_interface_change_leaves_the_other_side_s_implementer_short() -> None:
    base = company()
    office = object_type("Office", prop("city"), prop("name", required=True), interfaces=["Named"])
    ours = {**base, "object-types/Office": office}
    theirs = {
        **base,
        "interfaces/Named": interface("Named", prop("name", required=True), prop("tag")),
        "object-types/Employee": copy.deepcopy(base["object-types/Employee"]),
    }
    theirs["object-types/Employee"]["properties"].append(
        object_type("X", prop("tag"))["properties"][1]
    )
    assert check_changes(ours, ours) == {} and check_changes(theirs, theirs) == {}
    result = merge_snapshots(base, ours, theirs)
    assert result.conflicts == ()
    assert set(result.violations) == {"object-types/Office"}
    assert [v.reason for v in result.violations["object-types/Office"]] == [
        "INTERFACE_NOT_SATISFIED"
    ]
