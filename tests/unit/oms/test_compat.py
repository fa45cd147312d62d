"""Compatibility rules: every rule, in every mode."""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings

from oms import compat
from oms.compat import (
    RULES,
    CompatibilityMode,
    Severity,
    check_compatibility,
    has_breaking,
    severity_of,
)
from oms.diff import diff_snapshots
from oms.merge import merge_snapshots
from oms.model import Resource
from tests.support.ontology import (
    action_type,
    company,
    interface,
    link_type,
    mangled,
    object_param,
    object_type,
    param,
    prop,
    shared_property,
)

Snap = dict[str, Resource]


def edit(key: str, change: Callable[[Resource], None]) -> Callable[[Snap], None]:
    def apply(snap: Snap) -> None:
        change(snap[key])

    return apply


def prop_of(resource: Resource, name: str) -> dict[str, Any]:
    return next(p for p in resource["properties"] if p["api_name"] == name)


def param_of(resource: Resource, name: str) -> dict[str, Any]:
    return next(p for p in resource["parameters"] if p["api_name"] == name)


def set_prop(key: str, name: str, **fields: Any) -> Callable[[Snap], None]:
    return edit(key, lambda r: prop_of(r, name).update(fields))


def set_param(key: str, name: str, **fields: Any) -> Callable[[Snap], None]:
    return edit(key, lambda r: param_of(r, name).update(fields))


def add(key: str, resource: Resource) -> Callable[[Snap], None]:
    return lambda snap: snap.__setitem__(key, resource)


def delete(key: str) -> Callable[[Snap], None]:
    return lambda snap: snap.__delitem__(key)


def add_prop(key: str, new: dict[str, Any]) -> Callable[[Snap], None]:
    normalized = object_type("X", new)["properties"][1]
    return edit(key, lambda r: r["properties"].append(normalized))


def drop_prop(key: str, name: str) -> Callable[[Snap], None]:
    return edit(
        key,
        lambda r: r.__setitem__(
            "properties", [p for p in r["properties"] if p["api_name"] != name]
        ),
    )


def add_param(key: str, new: dict[str, Any]) -> Callable[[Snap], None]:
    normalized = action_type("x", [new], [])["parameters"][0]
    return edit(key, lambda r: r["parameters"].append(normalized))


def drop_param(key: str, name: str) -> Callable[[Snap], None]:
    return edit(
        key,
        lambda r: r.__setitem__(
            "parameters", [p for p in r["parameters"] if p["api_name"] != name]
        ),
    )


def set_field(key: str, **fields: Any) -> Callable[[Snap], None]:
    return edit(key, lambda r: r.update(fields))


def dt(base: str, array: bool = False) -> dict[str, Any]:
    return {"base": base, "array": array}


EMP, OFFICE, WORKS, HIRE, CONTACT, EMAIL = (
    "object-types/Employee",
    "object-types/Office",
    "link-types/worksIn",
    "action-types/hire",
    "interfaces/Contact",
    "shared-properties/email",
)

CASES: list[tuple[str, Callable[[Snap], None], str]] = [
    ("OBJECT_TYPE_ADDED", add("object-types/Car", object_type("Car")), "object-types/Car"),
    ("OBJECT_TYPE_DELETED", delete(OFFICE), OFFICE),
    ("DEPRECATED_OBJECT_TYPE_DELETED", delete(OFFICE), OFFICE),
    ("OBJECT_TYPE_DEPRECATED", set_field(OFFICE, status="DEPRECATED"), f"{OFFICE}.status"),
    ("OBJECT_TYPE_STATUS_CHANGED", set_field(OFFICE, status="EXPERIMENTAL"), f"{OFFICE}.status"),
    ("PRIMARY_KEY_CHANGED", set_field(EMP, primary_key="name"), f"{EMP}.primary_key"),
    ("TITLE_PROPERTY_CHANGED", set_field(EMP, title_property="id"), f"{EMP}.title_property"),
    (
        "INTERFACE_IMPLEMENTATION_ADDED",
        set_field(OFFICE, interfaces=["Named"]),
        f"{OFFICE}.interfaces[Named]",
    ),
    (
        "INTERFACE_IMPLEMENTATION_REMOVED",
        set_field(EMP, interfaces=[]),
        f"{EMP}.interfaces[Contact]",
    ),
    ("PROPERTY_ADDED", add_prop(OFFICE, prop("zip")), f"{OFFICE}.properties[zip]"),
    (
        "REQUIRED_PROPERTY_ADDED",
        add_prop(OFFICE, prop("zip", required=True)),
        f"{OFFICE}.properties[zip]",
    ),
    ("PROPERTY_DELETED", drop_prop(OFFICE, "city"), f"{OFFICE}.properties[city]"),
    ("REQUIRED_PROPERTY_DELETED", drop_prop(EMP, "name"), f"{EMP}.properties[name]"),
    ("DEPRECATED_PROPERTY_DELETED", drop_prop(OFFICE, "city"), f"{OFFICE}.properties[city]"),
    (
        "DEPRECATED_REQUIRED_PROPERTY_DELETED",
        drop_prop(EMP, "name"),
        f"{EMP}.properties[name]",
    ),
    (
        "PROPERTY_DEPRECATED",
        set_prop(OFFICE, "city", deprecated=True),
        f"{OFFICE}.properties[city].deprecated",
    ),
    (
        "PROPERTY_UNDEPRECATED",
        set_prop(OFFICE, "city", deprecated=False),
        f"{OFFICE}.properties[city].deprecated",
    ),
    (
        "PROPERTY_TYPE_WIDENED",
        set_prop(EMP, "level", data_type=dt("long")),
        f"{EMP}.properties[level].data_type",
    ),
    (
        "PROPERTY_TYPE_WIDENED",
        set_prop(EMP, "level", data_type=dt("double")),
        f"{EMP}.properties[level].data_type",
    ),
    (
        "PROPERTY_TYPE_WIDENED",
        set_prop(OFFICE, "city", data_type=dt("text")),
        f"{OFFICE}.properties[city].data_type",
    ),
    (
        "PROPERTY_TYPE_NARROWED",
        set_prop(OFFICE, "city", data_type=dt("string")),
        f"{OFFICE}.properties[city].data_type",
    ),
    (
        "PROPERTY_TYPE_CHANGED",
        set_prop(EMP, "level", data_type=dt("string")),
        f"{EMP}.properties[level].data_type",
    ),
    (
        "PROPERTY_TYPE_CHANGED",
        set_prop(EMP, "level", data_type=dt("integer", True)),
        f"{EMP}.properties[level].data_type",
    ),
    (
        "PROPERTY_MADE_REQUIRED",
        set_prop(OFFICE, "city", required=True),
        f"{OFFICE}.properties[city].required",
    ),
    (
        "PROPERTY_MADE_OPTIONAL",
        set_prop(EMP, "name", required=False),
        f"{EMP}.properties[name].required",
    ),
    (
        "PROPERTY_UNIQUE_ADDED",
        set_prop(OFFICE, "city", unique=True),
        f"{OFFICE}.properties[city].unique",
    ),
    (
        "PROPERTY_UNIQUE_REMOVED",
        set_prop(OFFICE, "city", unique=False),
        f"{OFFICE}.properties[city].unique",
    ),
    (
        "ENUM_VALUES_REMOVED",
        set_prop(EMP, "grade", enum_values=["junior"]),
        f"{EMP}.properties[grade].enum_values",
    ),
    (
        "ENUM_VALUES_ADDED",
        set_prop(EMP, "grade", enum_values=["junior", "senior", "staff"]),
        f"{EMP}.properties[grade].enum_values",
    ),
    (
        "ENUM_CONSTRAINT_ADDED",
        set_prop(OFFICE, "city", enum_values=["Paris"]),
        f"{OFFICE}.properties[city].enum_values",
    ),
    (
        "ENUM_CONSTRAINT_REMOVED",
        set_prop(EMP, "grade", enum_values=[]),
        f"{EMP}.properties[grade].enum_values",
    ),
    (
        "SHARED_PROPERTY_LINK_CHANGED",
        set_prop(EMP, "email", shared_property=""),
        f"{EMP}.properties[email].shared_property",
    ),
    (
        "PROPERTY_ORDER_CHANGED",
        edit(EMP, lambda r: r["properties"].reverse()),
        f"{EMP}.properties#order",
    ),
    (
        "METADATA_CHANGED",
        set_field(OFFICE, description="where people work"),
        f"{OFFICE}.description",
    ),
    (
        "METADATA_CHANGED",
        set_prop(OFFICE, "city", display_name="Town"),
        f"{OFFICE}.properties[city].display_name",
    ),
    ("LINK_TYPE_ADDED", add("link-types/x", link_type("x", "Office", "Office")), "link-types/x"),
    ("LINK_TYPE_DELETED", delete(WORKS), WORKS),
    (
        "LINK_ENDPOINT_CHANGED",
        set_field(WORKS, to_object_type="Employee"),
        f"{WORKS}.to_object_type",
    ),
    (
        "LINK_CARDINALITY_NARROWED",
        set_field(WORKS, cardinality="ONE_TO_ONE"),
        f"{WORKS}.cardinality",
    ),
    (
        "LINK_CARDINALITY_WIDENED",
        set_field(WORKS, cardinality="MANY_TO_MANY"),
        f"{WORKS}.cardinality",
    ),
    (
        "LINK_CARDINALITY_CHANGED",
        set_field(WORKS, cardinality="ONE_TO_MANY"),
        f"{WORKS}.cardinality",
    ),
    ("INTERFACE_ADDED", add("interfaces/Thing", interface("Thing")), "interfaces/Thing"),
    ("INTERFACE_DELETED", delete(CONTACT), CONTACT),
    ("INTERFACE_PROPERTY_ADDED", add_prop(CONTACT, prop("phone")), f"{CONTACT}.properties[phone]"),
    ("INTERFACE_PROPERTY_REMOVED", drop_prop(CONTACT, "email"), f"{CONTACT}.properties[email]"),
    (
        "PROPERTY_TYPE_CHANGED",
        set_prop(CONTACT, "email", data_type=dt("json")),
        f"{CONTACT}.properties[email].data_type",
    ),
    (
        "INTERFACE_EXTENDS_ADDED",
        set_field("interfaces/Named", extends=["Contact"]),
        "interfaces/Named.extends[Contact]",
    ),
    ("INTERFACE_EXTENDS_REMOVED", set_field(CONTACT, extends=[]), f"{CONTACT}.extends[Named]"),
    (
        "SHARED_PROPERTY_ADDED",
        add("shared-properties/x", shared_property("x")),
        "shared-properties/x",
    ),
    ("SHARED_PROPERTY_DELETED", delete(EMAIL), EMAIL),
    ("PROPERTY_TYPE_WIDENED", set_field(EMAIL, data_type=dt("text")), f"{EMAIL}.data_type"),
    ("ENUM_CONSTRAINT_ADDED", set_field(EMAIL, enum_values=["a@b"]), f"{EMAIL}.enum_values"),
    ("ACTION_TYPE_ADDED", add("action-types/x", action_type("x", [], [])), "action-types/x"),
    ("ACTION_TYPE_DELETED", delete(HIRE), HIRE),
    ("ACTION_PARAMETER_ADDED", add_param(HIRE, param("note")), f"{HIRE}.parameters[note]"),
    (
        "ACTION_PARAMETER_ADDED_REQUIRED",
        add_param(HIRE, param("note", required=True)),
        f"{HIRE}.parameters[note]",
    ),
    ("ACTION_PARAMETER_REMOVED", drop_param(HIRE, "office"), f"{HIRE}.parameters[office]"),
    ("ACTION_REQUIRED_PARAMETER_REMOVED", drop_param(HIRE, "office"), f"{HIRE}.parameters[office]"),
    (
        "ACTION_PARAMETER_TYPE_WIDENED",
        set_param(HIRE, "name", data_type=dt("text")),
        f"{HIRE}.parameters[name]",
    ),
    (
        "ACTION_PARAMETER_TYPE_NARROWED",
        set_param(HIRE, "name", data_type=dt("string")),
        f"{HIRE}.parameters[name]",
    ),
    (
        "ACTION_PARAMETER_TYPE_CHANGED",
        set_param(HIRE, "office", object_type="Employee"),
        f"{HIRE}.parameters[office]",
    ),
    (
        "ACTION_PARAMETER_TYPE_CHANGED",
        set_param(HIRE, "name", data_type=None, object_type="Office"),
        f"{HIRE}.parameters[name]",
    ),
    (
        "ACTION_PARAMETER_MADE_REQUIRED",
        set_param(HIRE, "name", required=True),
        f"{HIRE}.parameters[name].required",
    ),
    (
        "ACTION_PARAMETER_MADE_OPTIONAL",
        set_param(HIRE, "name", required=False),
        f"{HIRE}.parameters[name].required",
    ),
    (
        "ACTION_PARAMETER_ORDER_CHANGED",
        edit(HIRE, lambda r: r["parameters"].reverse()),
        f"{HIRE}.parameters#order",
    ),
    ("ACTION_PERMISSION_CHANGED", set_field(HIRE, permission="hr:hire"), f"{HIRE}.permission"),
    (
        "ACTION_RULES_CHANGED",
        edit(HIRE, lambda r: r["rules"][0]["values"].pop("name")),
        f"{HIRE}.rules",
    ),
]

SETUP: dict[str, Callable[[Snap], None]] = {  # the old ontology some cases start from
    "PROPERTY_TYPE_NARROWED": set_prop(OFFICE, "city", data_type=dt("text")),
    "PROPERTY_UNIQUE_REMOVED": set_prop(OFFICE, "city", unique=True),
    "ACTION_PARAMETER_MADE_OPTIONAL": set_param(HIRE, "name", required=True),
    "ACTION_REQUIRED_PARAMETER_REMOVED": set_param(HIRE, "office", required=True),
    "ACTION_PARAMETER_TYPE_NARROWED": set_param(HIRE, "name", data_type=dt("text")),
    "DEPRECATED_OBJECT_TYPE_DELETED": set_field(OFFICE, status="DEPRECATED"),
    "DEPRECATED_PROPERTY_DELETED": set_prop(OFFICE, "city", deprecated=True),
    "DEPRECATED_REQUIRED_PROPERTY_DELETED": set_prop(EMP, "name", deprecated=True),
    "PROPERTY_UNDEPRECATED": set_prop(OFFICE, "city", deprecated=True),
}


def before_and_after(rule_id: str, change: Callable[[Snap], None]) -> tuple[Snap, Snap]:
    old = company()
    SETUP.get(rule_id, lambda snap: None)(old)
    new = copy.deepcopy(old)
    change(new)
    return old, new


@pytest.mark.parametrize(("rule_id", "change", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_change_is_reported_with_its_rule_and_path(
    rule_id: str, change: Callable[[Snap], None], path: str
) -> None:
    old, new = before_and_after(rule_id, change)
    findings = check_compatibility(old, new)
    assert (rule_id, path) in [(f.rule_id, f.path) for f in findings], findings


@pytest.mark.parametrize(("rule_id", "change", "path"), CASES, ids=[c[0] for c in CASES])
def test_the_severity_follows_the_mode(
    rule_id: str, change: Callable[[Snap], None], path: str
) -> None:
    old, new = before_and_after(rule_id, change)
    rule = RULES[rule_id]
    for mode, breaking in [
        (CompatibilityMode.BACKWARD, rule.backward),
        (CompatibilityMode.FORWARD, rule.forward),
        (CompatibilityMode.FULL, rule.backward or rule.forward),
        (CompatibilityMode.NONE, False),
    ]:
        finding = next(
            f for f in check_compatibility(old, new, mode) if (f.rule_id, f.path) == (rule_id, path)
        )
        assert finding.severity == (Severity.BREAKING if breaking else rule.severity), mode
        assert finding.key == path.split(".")[0]


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(RULES)


@pytest.mark.parametrize(
    "rule_id",
    [
        "OBJECT_TYPE_DELETED",
        "PROPERTY_DELETED",
        "PROPERTY_TYPE_NARROWED",
        "PROPERTY_TYPE_CHANGED",
        "PROPERTY_MADE_REQUIRED",
        "PROPERTY_UNIQUE_ADDED",
        "ENUM_VALUES_REMOVED",
        "PRIMARY_KEY_CHANGED",
        "LINK_ENDPOINT_CHANGED",
        "LINK_CARDINALITY_NARROWED",
        "INTERFACE_PROPERTY_REMOVED",
        "ACTION_PARAMETER_ADDED_REQUIRED",
        "ACTION_PARAMETER_TYPE_CHANGED",
    ],
)
def test_the_issue_breaking_rules_break_backward(rule_id: str) -> None:
    assert severity_of(RULES[rule_id], CompatibilityMode.BACKWARD) is Severity.BREAKING


@pytest.mark.parametrize(
    "rule_id",
    [
        "PROPERTY_TYPE_WIDENED",
        "PROPERTY_ADDED",
        "OBJECT_TYPE_ADDED",
        "ENUM_VALUES_ADDED",
        "ACTION_PARAMETER_ADDED",
        "METADATA_CHANGED",
    ],
)
def test_additions_and_widening_do_not_break_backward(rule_id: str) -> None:
    assert severity_of(RULES[rule_id], CompatibilityMode.BACKWARD) is not Severity.BREAKING


def test_forward_is_backward_with_old_and_new_swapped_but_for_removal_protection() -> None:
    """Schema Registry's symmetry; the only exception is the OMS's named difference."""
    for rule_id, change, _ in CASES:
        old, new = before_and_after(rule_id, change)
        forward = check_compatibility(old, new, CompatibilityMode.FORWARD)
        swapped = check_compatibility(new, old, CompatibilityMode.BACKWARD)
        unprotected = [f for f in swapped if not f.rule.removal]
        assert has_breaking(forward) == has_breaking(unprotected), rule_id


def test_schema_registry_allows_additions_in_forward_and_optional_ones_everywhere() -> None:
    old, new = before_and_after("PROPERTY_ADDED", add_prop(OFFICE, prop("nickname")))
    for mode in CompatibilityMode:
        assert not has_breaking(check_compatibility(old, new, mode)), mode
    old, new = before_and_after("REQUIRED", add_prop(OFFICE, prop("zip", required=True)))
    assert not has_breaking(check_compatibility(old, new, CompatibilityMode.FORWARD))
    assert has_breaking(check_compatibility(old, new, CompatibilityMode.BACKWARD))


def test_a_removal_passes_once_the_deprecation_has_reached_the_version_compared() -> None:
    released = company()
    set_prop(OFFICE, "city", deprecated=True)(released)
    older = company()
    new = copy.deepcopy(released)
    drop_prop(OFFICE, "city")(new)
    against_older = check_compatibility(older, new)
    assert [f.rule_id for f in against_older] == ["PROPERTY_DELETED"]
    assert has_breaking(against_older)
    marked = check_compatibility(older, new, deprecations=released)
    assert [f.rule_id for f in marked] == ["DEPRECATED_PROPERTY_DELETED"]
    assert not has_breaking(marked)


def test_every_finding_explains_itself_from_the_catalogue() -> None:
    for rule_id, change, path in CASES:
        old, new = before_and_after(rule_id, change)
        finding = next(f for f in check_compatibility(old, new) if f.path == path)
        assert finding.rule.why and finding.rule.fix, rule_id
        assert "'" not in finding.message and "True" not in finding.message, finding


def test_every_rule_id_the_code_can_emit_is_in_the_catalogue() -> None:
    """Read the module's source: every rule id literal, and every f-string family, expanded."""
    source = inspect.getsource(compat)
    literals = set(re.findall(r'"([A-Z]+(?:_[A-Z]+)+)"', source))
    emitted = {name for name in literals if not name.startswith(("BASE_", "COMPATIBILITY_"))}
    emitted -= {m.value for m in CompatibilityMode} | {s.value for s in Severity}
    tails = {
        "change": {"WIDENED", "NARROWED", "CHANGED"},
        "rule": {"PROPERTY_DELETED", "REQUIRED_PROPERTY_DELETED"},
    }
    for prefix, variable in re.findall(r'f"([A-Z_]+)\{(change|rule)\}"', source):
        emitted |= {prefix + tail for tail in tails[variable]}
    emitted |= set(compat._DELETED.values())
    assert emitted - set(RULES) == set()


def test_identical_snapshots_have_no_findings() -> None:
    assert check_compatibility(company(), company(), "FULL") == []


def test_only_the_given_keys_are_compared() -> None:
    old, new = company(), company()
    del new[OFFICE]
    new["object-types/Car"] = object_type("Car")
    findings = check_compatibility(old, new, keys=["object-types/Car"])
    assert [f.rule_id for f in findings] == ["OBJECT_TYPE_ADDED"]


def test_findings_are_sorted_by_resource() -> None:
    old, new = company(), company()
    del new[OFFICE]
    new["action-types/fire"] = action_type(
        "fire",
        [object_param("who", "Employee")],
        [{"kind": "DELETE_OBJECT", "object_type": "Employee", "object_parameter": "who"}],
    )
    assert [f.path for f in check_compatibility(old, new)] == ["action-types/fire", OFFICE]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="SIDEWAYS"):
        check_compatibility({}, {}, "SIDEWAYS")


@settings(max_examples=100, deadline=None)
@given(mangled())
def test_malformed_resources_never_crash_diff_merge_or_compatibility(
    case: tuple[str, dict[str, Any]],
) -> None:
    key, resource = case
    old = company()
    new = {**old, key: resource}
    for mode in CompatibilityMode:
        check_compatibility(old, new, mode)
        check_compatibility(new, old, mode)
    diff_snapshots(old, new)
    merge_snapshots(old, new, {**old, key: copy.deepcopy(old[key]) | {"description": "x"}})
    merge_snapshots(old, {k: v for k, v in old.items() if k != key}, new)


def test_messages_quote_values_in_their_json_form() -> None:
    old, new = before_and_after("PROPERTY_MADE_REQUIRED", set_prop(OFFICE, "city", required=True))
    (finding,) = [f for f in check_compatibility(old, new) if f.rule_id == "PROPERTY_MADE_REQUIRED"]
    assert finding.message.endswith("required: false -> true")
    assert "True" not in finding.message and "'" not in finding.message
