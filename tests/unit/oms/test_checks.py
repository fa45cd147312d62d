"""Write-time checks: every problem reported, with its field path and reason."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from common.errors import FieldViolation
from oms.checks import check_changes, check_delete, check_resource
from oms.model import (
    ACTION_TYPES,
    INTERFACES,
    LINK_TYPES,
    OBJECT_TYPES,
    SHARED_PROPERTIES,
    Overlay,
)
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


def found(violations: list[FieldViolation]) -> set[tuple[str, str]]:
    return {(v.field, v.reason) for v in violations}


def test_a_valid_ontology_passes_every_check() -> None:
    snap = company()
    for key, resource in snap.items():
        collection = key.split("/")[0]
        assert check_resource(collection, resource, snap) == [], key


def test_every_problem_of_a_definition_is_reported_not_just_the_first() -> None:
    bad = {
        "api_name": "bad type",
        "display_name": 7,
        "status": "RETIRED",
        "primary_key": "missing",
        "title_property": "alsoMissing",
        "properties": [
            {"api_name": "Upper", "data_type": {"base": "string", "array": False}},
            {"api_name": "dup", "data_type": {"base": "varchar", "array": False}},
            {"api_name": "dup", "data_type": {"base": "string", "array": "no"}},
            "not an object",
        ],
        "interfaces": ["Unknown", 3],
        "colour": "blue",
    }
    assert found(check_resource(OBJECT_TYPES, bad, company())) == {
        ("object_type.colour", "UNKNOWN_FIELD"),
        ("object_type.api_name", "INVALID_NAME"),
        ("object_type.display_name", "WRONG_TYPE"),
        ("object_type.status", "INVALID_VALUE"),
        ("object_type.primary_key", "UNRESOLVED_REFERENCE"),
        ("object_type.title_property", "UNRESOLVED_REFERENCE"),
        ("object_type.properties[0].api_name", "INVALID_NAME"),
        ("object_type.properties[1].data_type.base", "INVALID_VALUE"),
        ("object_type.properties[2].api_name", "DUPLICATE_NAME"),
        ("object_type.properties[2].data_type.array", "WRONG_TYPE"),
        ("object_type.properties[3]", "WRONG_TYPE"),
        ("object_type.interfaces[0]", "UNRESOLVED_REFERENCE"),
        ("object_type.interfaces[1]", "WRONG_TYPE"),
    }


@pytest.mark.parametrize(
    ("collection", "name", "ok"),
    [
        (OBJECT_TYPES, "Employee", True),
        (OBJECT_TYPES, "employee", False),
        (OBJECT_TYPES, "Employee2", True),
        (OBJECT_TYPES, "2Employee", False),
        (OBJECT_TYPES, "Emp_loyee", False),
        (OBJECT_TYPES, "E" * 101, False),
        (INTERFACES, "Named", True),
        (INTERFACES, "named", False),
        (LINK_TYPES, "worksIn", True),
        (LINK_TYPES, "WorksIn", False),
        (SHARED_PROPERTIES, "email", True),
        (SHARED_PROPERTIES, "e-mail", False),
        (ACTION_TYPES, "hire", True),
        (ACTION_TYPES, "", False),
    ],
)
def test_api_names_have_the_form_of_their_kind(collection: str, name: str, ok: bool) -> None:
    snap = company()
    key = next(k for k in snap if k.startswith(collection + "/"))
    resource = {**snap[key], "api_name": name}
    names = {f for f, _ in found(check_resource(collection, resource, snap))}
    assert (".".join([key_field(collection), "api_name"]) not in names) is ok


def key_field(collection: str) -> str:
    return {
        OBJECT_TYPES: "object_type",
        INTERFACES: "interface",
        LINK_TYPES: "link_type",
        SHARED_PROPERTIES: "shared_property",
        ACTION_TYPES: "action_type",
    }[collection]


def test_property_fields_are_checked() -> None:
    resource = object_type(
        "Thing",
        prop("size", "integer", enum_values=["1"]),
        prop("kind", enum_values=["a", "a", ""]),
        prop("flag", "boolean", required="yes", unique=None),
        {"api_name": "noType"},
        prop("long", description="x" * 5000, display_name="y" * 300),
    )
    assert found(check_resource(OBJECT_TYPES, resource, {})) == {
        ("object_type.properties[1].enum_values", "INVALID_VALUE"),
        ("object_type.properties[2].enum_values[1]", "DUPLICATE_NAME"),
        ("object_type.properties[2].enum_values[2]", "WRONG_TYPE"),
        ("object_type.properties[3].required", "WRONG_TYPE"),
        ("object_type.properties[3].unique", "WRONG_TYPE"),
        ("object_type.properties[4].data_type.base", "REQUIRED"),
        ("object_type.properties[5].description", "TOO_LONG"),
        ("object_type.properties[5].display_name", "TOO_LONG"),
    }


@pytest.mark.parametrize(
    ("key_prop", "reason"),
    [
        (prop("id", required=True), None),
        (prop("id", "long", required=True), None),
        (prop("id"), "INVALID_PRIMARY_KEY"),
        (prop("id", "double", required=True), "INVALID_PRIMARY_KEY"),
        (
            {**prop("id", required=True), "data_type": {"base": "string", "array": True}},
            "INVALID_PRIMARY_KEY",
        ),
    ],
)
def test_the_primary_key_is_a_required_single_string_or_integer(
    key_prop: dict[str, object], reason: str | None
) -> None:
    resource = object_type("Thing", key_prop)
    reasons = {
        r for f, r in found(check_resource(OBJECT_TYPES, resource, {})) if f.endswith("primary_key")
    }
    assert reasons == ({reason} if reason else set())


def test_primary_and_title_keys_are_required() -> None:
    resource = object_type("Thing", prop("id", required=True), primary_key="", title_property="")
    assert found(check_resource(OBJECT_TYPES, resource, {})) == {
        ("object_type.primary_key", "REQUIRED"),
        ("object_type.title_property", "REQUIRED"),
    }


def test_object_types_and_interfaces_share_one_namespace() -> None:
    snap = company()
    assert ("object_type.api_name", "NAME_CONFLICT") in found(
        check_resource(OBJECT_TYPES, object_type("Named"), snap)
    )
    assert ("interface.api_name", "NAME_CONFLICT") in found(
        check_resource(INTERFACES, interface("Office"), snap)
    )


def test_an_implementer_needs_the_interface_properties_inherited_ones_included() -> None:
    snap = company()
    employee = {**snap["object-types/Employee"]}
    employee["properties"] = [
        p for p in employee["properties"] if p["api_name"] not in ("name", "email")
    ]
    employee["title_property"] = "id"
    violations = check_resource(OBJECT_TYPES, employee, snap)
    assert found(violations) == {
        ("object_type.interfaces[0]", "INTERFACE_NOT_SATISFIED"),
        ("object_type", "BREAKS_DEPENDENT"),  # the hire action sets the removed name
    }
    text = " ".join(v.description for v in violations)
    assert '"name" (from Named)' in text and '"email" (from Contact)' in text


def test_an_implementer_property_must_match_type_and_required() -> None:
    snap = company()
    employee = {**snap["object-types/Employee"]}
    employee["properties"] = [
        prop("id", required=True),
        prop("name", "text"),
        prop("email", shared_property="email"),
    ]
    messages = [v.description for v in check_resource(OBJECT_TYPES, employee, snap)]
    assert any("data type of Named" in m for m in messages)
    assert any("must be required, as in Named" in m for m in messages)


def test_shared_properties_must_match_type_and_enum_and_exist() -> None:
    snap = company()
    resource = object_type(
        "Person",
        prop("email", "text", shared_property="email"),
        prop("mail", enum_values=["a"], shared_property="email"),
        prop("other", shared_property="nothing"),
    )
    assert found(check_resource(OBJECT_TYPES, resource, snap)) == {
        ("object_type.properties[1].data_type", "TYPE_MISMATCH"),
        ("object_type.properties[2].enum_values", "TYPE_MISMATCH"),
        ("object_type.properties[3].shared_property", "UNRESOLVED_REFERENCE"),
    }


def test_link_endpoints_must_resolve_and_cardinality_be_known() -> None:
    resource = link_type("owns", "Employee", "Car", "SOME_TO_SOME")
    assert found(check_resource(LINK_TYPES, resource, company())) == {
        ("link_type.to_object_type", "UNRESOLVED_REFERENCE"),
        ("link_type.cardinality", "INVALID_VALUE"),
    }
    missing = link_type("owns", "", "employee")
    assert found(check_resource(LINK_TYPES, missing, company())) == {
        ("link_type.from_object_type", "REQUIRED"),
        ("link_type.to_object_type", "INVALID_NAME"),
    }


def test_interface_inheritance_may_not_cycle() -> None:
    snap = company()
    self_loop = interface("Named", prop("name", required=True), extends=("Named",))
    assert ("interface.extends[0]", "INHERITANCE_CYCLE") in found(
        check_resource(INTERFACES, self_loop, snap)
    )
    snap["interfaces/Base"] = interface("Base", extends=("Contact",))
    cycle = interface("Named", prop("name", required=True), extends=("Base",))
    violations = check_resource(INTERFACES, cycle, snap)
    assert ("interface.extends[0]", "INHERITANCE_CYCLE") in found(violations)
    assert any("Named -> Base -> Contact -> Named" in v.description for v in violations)


def test_an_interface_may_not_redefine_an_inherited_property_with_another_type() -> None:
    resource = interface("Person", prop("name", "text"), extends=("Named",))
    assert found(check_resource(INTERFACES, resource, company())) == {
        ("interface.extends[0]", "TYPE_MISMATCH")
    }


def test_interface_extends_lists_resolve_without_duplicates() -> None:
    resource = interface("Person", extends=("Named", "Named", "Ghost"))
    assert found(check_resource(INTERFACES, resource, company())) == {
        ("interface.extends[1]", "DUPLICATE_NAME"),
        ("interface.extends[2]", "UNRESOLVED_REFERENCE"),
    }


def test_shared_property_definition_is_checked() -> None:
    resource = shared_property("tag", "integer", enum_values=["x"])
    assert found(check_resource(SHARED_PROPERTIES, resource, {})) == {
        ("shared_property.enum_values", "INVALID_VALUE")
    }


def test_action_permission_and_parameters_are_checked() -> None:
    resource = action_type(
        "fire",
        [
            param("id"),
            param("id"),
            {**object_param("both", "Employee"), "data_type": {"base": "string", "array": False}},
            param("neither", None),
            object_param("ghost", "Ghost"),
        ],
        [{"kind": "DELETE_OBJECT", "object_type": "Employee", "object_parameter": "neither"}],
        permission="Fire Everyone",
    )
    assert found(check_resource(ACTION_TYPES, resource, company())) == {
        ("action_type.permission", "INVALID_VALUE"),
        ("action_type.parameters[1].api_name", "DUPLICATE_NAME"),
        ("action_type.parameters[2]", "INVALID_VALUE"),
        ("action_type.parameters[3]", "REQUIRED"),
        ("action_type.parameters[4].object_type", "UNRESOLVED_REFERENCE"),
        ("action_type.rules[0].object_parameter", "TYPE_MISMATCH"),
    }


def test_an_action_needs_rules() -> None:
    resource = action_type("noop", [], [])
    assert found(check_resource(ACTION_TYPES, resource, {})) == {("action_type.rules", "REQUIRED")}


def test_create_object_rules_set_typed_known_properties_and_every_required_one() -> None:
    resource = action_type(
        "hire",
        [param("name"), param("level"), object_param("who", "Employee")],
        [
            {
                "kind": "CREATE_OBJECT",
                "object_type": "Employee",
                "object_parameter": "who",
                "values": {"name": "name", "level": "level", "salary": "name", "grade": "nope"},
            }
        ],
    )
    violations = check_resource(ACTION_TYPES, resource, company())
    assert found(violations) == {
        ("action_type.rules[0].object_parameter", "INVALID_VALUE"),
        ("action_type.rules[0].values[level]", "TYPE_MISMATCH"),
        ("action_type.rules[0].values[salary]", "UNRESOLVED_REFERENCE"),
        ("action_type.rules[0].values[grade]", "UNRESOLVED_REFERENCE"),
        ("action_type.rules[0].values", "REQUIRED"),
    }
    assert any("primary key and required properties: id" in v.description for v in violations)


def test_modify_object_rules_need_a_matching_object_parameter_and_keep_the_key() -> None:
    resource = action_type(
        "rename",
        [param("id"), object_param("office", "Office")],
        [
            {
                "kind": "MODIFY_OBJECT",
                "object_type": "Employee",
                "object_parameter": "office",
                "values": {"id": "id"},
            },
            {
                "kind": "MODIFY_OBJECT",
                "object_type": "Employee",
                "object_parameter": "ghost",
                "values": {},
            },
            {"kind": "MODIFY_OBJECT", "object_type": "Employee", "values": {"name": "id"}},
        ],
    )
    assert found(check_resource(ACTION_TYPES, resource, company())) == {
        ("action_type.rules[0].object_parameter", "TYPE_MISMATCH"),
        ("action_type.rules[0].values[id]", "INVALID_VALUE"),
        ("action_type.rules[1].object_parameter", "UNRESOLVED_REFERENCE"),
        ("action_type.rules[1].values", "REQUIRED"),
        ("action_type.rules[2].object_parameter", "REQUIRED"),
    }


def test_delete_object_rules_take_no_values_or_link() -> None:
    resource = action_type(
        "fire",
        [object_param("who", "Employee"), param("x")],
        [
            {
                "kind": "DELETE_OBJECT",
                "object_type": "Employee",
                "object_parameter": "who",
                "values": {"name": "x"},
                "link_type": "worksIn",
            },
            {"kind": "EXPLODE_OBJECT"},
            "a rule",
        ],
    )
    assert found(check_resource(ACTION_TYPES, resource, company())) == {
        ("action_type.rules[0].values", "INVALID_VALUE"),
        ("action_type.rules[0].link_type", "INVALID_VALUE"),
        ("action_type.rules[1].kind", "INVALID_VALUE"),
        ("action_type.rules[2]", "WRONG_TYPE"),
    }


def test_link_rules_map_from_and_to_to_parameters_of_the_endpoint_types() -> None:
    resource = action_type(
        "move",
        [object_param("employee", "Employee"), object_param("office", "Office")],
        [
            {
                "kind": "CREATE_LINK",
                "link_type": "worksIn",
                "values": {"from": "office", "to": "employee"},
            },
            {
                "kind": "DELETE_LINK",
                "link_type": "worksIn",
                "object_type": "Employee",
                "values": {"from": "employee", "via": "office", "to": "ghost"},
            },
            {
                "kind": "DELETE_LINK",
                "link_type": "livesIn",
                "values": {"from": "employee", "to": "office"},
            },
        ],
    )
    assert found(check_resource(ACTION_TYPES, resource, company())) == {
        ("action_type.rules[0].values[from]", "TYPE_MISMATCH"),
        ("action_type.rules[0].values[to]", "TYPE_MISMATCH"),
        ("action_type.rules[1].object_type", "INVALID_VALUE"),
        ("action_type.rules[1].values", "INVALID_VALUE"),
        ("action_type.rules[1].values[to]", "UNRESOLVED_REFERENCE"),
        ("action_type.rules[2].link_type", "UNRESOLVED_REFERENCE"),
    }


def test_rule_values_must_be_a_map() -> None:
    resource = action_type(
        "hire", [param("id")], [{"kind": "CREATE_OBJECT", "object_type": "Office", "values": []}]
    )
    assert ("action_type.rules[0].values", "WRONG_TYPE") in found(
        check_resource(ACTION_TYPES, resource, company())
    )


# -- effects on other resources -----------------------------------------------------------


def test_an_interface_gaining_a_property_breaks_implementers_of_its_sub_interfaces() -> None:
    snap = company()
    named = interface("Named", prop("name", required=True), prop("nickname"))
    violations = check_resource(INTERFACES, named, snap)
    assert found(violations) == {("interface", "BREAKS_DEPENDENT")}
    assert "object-types/Employee" in violations[0].description
    assert "nickname" in violations[0].description


def test_an_object_type_losing_a_property_an_action_sets_breaks_the_action() -> None:
    snap = company()
    employee = {**snap["object-types/Employee"]}
    employee["properties"] = [p for p in employee["properties"] if p["api_name"] != "level"]
    violations = check_resource(OBJECT_TYPES, employee, snap)
    assert found(violations) == {("object_type", "BREAKS_DEPENDENT")}
    assert "action-types/relocate" in violations[0].description


def test_a_shared_property_changing_type_breaks_its_users() -> None:
    violations = check_resource(SHARED_PROPERTIES, shared_property("email", "text"), company())
    described = " ".join(v.description for v in violations)
    assert "object-types/Employee" in described and "interfaces/Contact" in described


def test_a_dependent_already_broken_before_the_write_is_not_blamed_on_it() -> None:
    snap = company()
    snap["link-types/owns"] = link_type("owns", "Employee", "Car")  # dangling since before
    employee = {**snap["object-types/Employee"], "description": "people"}
    assert check_resource(OBJECT_TYPES, employee, snap) == []


def test_deleting_a_referenced_resource_is_refused_with_every_referrer() -> None:
    snap = company()
    assert found(check_delete(OBJECT_TYPES, "Office", snap)) == {("name", "RESOURCE_IN_USE")}
    described = sorted(v.description for v in check_delete(OBJECT_TYPES, "Office", snap))
    prefix = "object-types/Office is still referenced by"
    assert described == [
        f"{prefix} action-types/hire (parameters[2].object_type)",
        f"{prefix} action-types/relocate (parameters[1].object_type)",
        f"{prefix} link-types/worksIn (to_object_type)",
    ]
    assert len(check_delete(LINK_TYPES, "worksIn", snap)) == 1
    assert len(check_delete(INTERFACES, "Named", snap)) == 1
    assert len(check_delete(INTERFACES, "Contact", snap)) == 1
    assert len(check_delete(SHARED_PROPERTIES, "email", snap)) == 2


def test_deleting_an_unreferenced_resource_is_allowed() -> None:
    snap = company()
    assert check_delete(ACTION_TYPES, "hire", snap) == []
    assert check_delete(OBJECT_TYPES, "Nobody", snap) == []


def test_a_self_link_does_not_block_nor_pass_for_other_referrers() -> None:
    snap = {"object-types/Person": object_type("Person")}
    snap["link-types/knows"] = link_type("knows", "Person", "Person", "MANY_TO_MANY")
    assert len(check_delete(OBJECT_TYPES, "Person", snap)) == 2
    assert check_delete(LINK_TYPES, "knows", snap) == []


def test_check_changes_checks_changed_resources_and_their_referrers_only() -> None:
    snap = company()
    snap["link-types/owns"] = link_type("owns", "Employee", "Car")  # broken, but not changed
    after = Overlay(
        snap, {"object-types/Office": None, "shared-properties/tag": shared_property("Tag")}
    )
    result = check_changes(after, ["object-types/Office", "shared-properties/tag"])
    assert set(result) == {
        "action-types/hire",
        "action-types/relocate",
        "link-types/worksIn",
        "shared-properties/tag",
    }
    assert found(result["link-types/worksIn"]) == {
        ("link_type.to_object_type", "UNRESOLVED_REFERENCE")
    }


def test_check_changes_can_leave_out_what_was_already_wrong_before() -> None:
    snap = company()
    snap["link-types/owns"] = link_type("owns", "Employee", "Car")  # dangling since before
    employee = {**snap["object-types/Employee"], "description": "people"}
    after = Overlay(snap, {"object-types/Employee": employee})
    assert set(check_changes(after, ["object-types/Employee"])) == {"link-types/owns"}
    assert check_changes(after, ["object-types/Employee"], before=snap) == {}
    broken = {**employee, "primary_key": "nothing"}
    worse = Overlay(snap, {"object-types/Employee": broken})
    result = check_changes(worse, ["object-types/Employee"], before=snap)
    assert set(result) == {"object-types/Employee"}


def test_check_changes_checks_a_changed_resource_whole_even_if_it_was_wrong_before() -> None:
    snap = company()
    snap["link-types/owns"] = link_type("owns", "Employee", "Car")  # dangling since before
    owns = {**snap["link-types/owns"], "description": "cars people own"}
    result = check_changes(
        Overlay(snap, {"link-types/owns": owns}), ["link-types/owns"], before=snap
    )
    assert found(result["link-types/owns"]) == {
        ("link_type.to_object_type", "UNRESOLVED_REFERENCE")
    }


@settings(max_examples=150, deadline=None)
@given(mangled())
def test_malformed_definitions_get_violations_never_a_crash(
    case: tuple[str, dict[str, Any]],
) -> None:
    key, resource = case
    collection = key.split("/")[0]
    snap = company()
    check_resource(collection, resource, snap)
    check_changes(Overlay(snap, {key: resource}), [key], before=snap)
    for other in snap:
        other_collection, other_name = other.split("/")
        check_delete(other_collection, other_name, Overlay(snap, {key: resource}))


def test_names_within_a_resource_may_not_differ_only_in_case() -> None:
    resource = object_type("Thing", prop("userId"), prop("userID"), prop("userid"))
    violations = check_resource(OBJECT_TYPES, resource, {})
    assert found(violations) == {
        ("object_type.properties[2].api_name", "DUPLICATE_NAME"),
        ("object_type.properties[3].api_name", "DUPLICATE_NAME"),
    }
    assert '"userID" differs from "userId" only in case' in violations[0].description
    action = action_type(
        "go", [param("when"), param("When"), param("wHen")], [{"kind": "DELETE_OBJECT"}]
    )
    assert [
        v.field for v in check_resource(ACTION_TYPES, action, {}) if v.reason == "DUPLICATE_NAME"
    ] == [
        "action_type.parameters[2].api_name",
    ]


class CountingSnapshot(dict[str, Any]):
    """A snapshot that counts full scans, the cost a write should avoid when it can."""

    scans = 0

    def __iter__(self) -> Any:
        self.scans += 1
        return super().__iter__()


@pytest.mark.parametrize(
    ("key", "field", "value", "scans"),
    [
        ("object-types/Employee", "description", "people", 0),
        ("object-types/Employee", "status", "DEPRECATED", 0),
        ("object-types/Employee", "primary_key", "name", 1),
        ("link-types/worksIn", "cardinality", "MANY_TO_MANY", 0),
        ("link-types/worksIn", "to_object_type", "Employee", 1),
        ("interfaces/Named", "description", "named things", 0),
        ("shared-properties/email", "display_name", "E-mail", 0),
        ("action-types/hire", "permission", "hr:hire", 0),
    ],
)
def test_a_write_rereads_referrers_only_when_it_changes_what_they_rely_on(
    key: str, field: str, value: str, scans: int
) -> None:
    snap = CountingSnapshot(company())
    collection = key.split("/")[0]
    check_resource(collection, {**snap[key], field: value}, snap)
    assert snap.scans == scans
