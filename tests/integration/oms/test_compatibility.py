"""The compatibility policy over a real server.

The published catalogue, findings that explain themselves, Schema Registry's modes, and
deprecate-then-remove.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from oms.v1 import tag_service_pb2 as ts
from tests.support.errors import reason, violated_fields
from tests.support.oms import object_type, prop


def set_properties(oms, branch, api_name, *properties):
    return oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch=branch,
            object_type=r.ObjectType(api_name=api_name, properties=properties),
            update_mask=field_mask_pb2.FieldMask(paths=["properties"]),
        ),
        metadata=oms.admin,
        timeout=10,
    )


def validate(oms, branch, mode=h.COMPATIBILITY_MODE_UNSPECIFIED):
    return oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch=branch, mode=mode), metadata=oms.admin, timeout=10
    )


def test_the_catalogue_is_served_to_any_reader_and_names_the_differences(oms):
    with pytest.raises(grpc.RpcError) as anonymous:
        oms.branches.ListCompatibilityRules(bs.ListCompatibilityRulesRequest(), timeout=10)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

    rules = oms.branches.ListCompatibilityRules(
        bs.ListCompatibilityRulesRequest(), metadata=oms.metadata(("schema:read",)), timeout=10
    ).rules
    by_id = {rule.rule_id: rule for rule in rules}
    assert [rule.rule_id for rule in rules] == sorted(by_id)
    assert all(rule.summary and rule.reason and rule.fix for rule in rules)
    deleted = by_id["PROPERTY_DELETED"]
    assert list(deleted.breaking_in) == [
        h.COMPATIBILITY_MODE_BACKWARD,
        h.COMPATIBILITY_MODE_BACKWARD_TRANSITIVE,
        h.COMPATIBILITY_MODE_FULL,
        h.COMPATIBILITY_MODE_FULL_TRANSITIVE,
    ]
    assert deleted.schema_registry_difference == "REMOVAL_PROTECTION"
    assert list(by_id["PROPERTY_ADDED"].breaking_in) == []
    assert list(by_id["PROPERTY_TYPE_WIDENED"].breaking_in) == [
        h.COMPATIBILITY_MODE_FORWARD,
        h.COMPATIBILITY_MODE_FORWARD_TRANSITIVE,
        h.COMPATIBILITY_MODE_FULL,
        h.COMPATIBILITY_MODE_FULL_TRANSITIVE,
    ]
    assert by_id["PROPERTY_TYPE_WIDENED"].schema_registry_difference == ""


def test_findings_carry_the_reason_and_the_fix_of_their_rule(oms):
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature")
    set_properties(oms, "feature", "Employee", prop("id", required=True), prop("name"))
    (finding,) = validate(oms, "feature").findings
    rules = oms.branches.ListCompatibilityRules(
        bs.ListCompatibilityRulesRequest(), metadata=oms.admin, timeout=10
    ).rules
    rule = next(rule for rule in rules if rule.rule_id == finding.rule_id)
    assert finding.rule_id == "PROPERTY_DELETED"
    assert finding.severity == h.SEVERITY_BREAKING
    assert (finding.reason, finding.fix) == (rule.reason, rule.fix)
    assert "deprecate" in finding.fix.lower()


def test_forward_allows_additions_as_schema_registry_does(oms):
    oms.create("main", object_type("Employee"))
    oms.branch("feature", compatibility_mode=h.COMPATIBILITY_MODE_FORWARD)
    base = [prop("id", required=True), prop("name")]
    set_properties(oms, "feature", "Employee", *base, prop("nickname"))
    forward = validate(oms, "feature")
    assert forward.passed, forward.findings
    assert [f.rule_id for f in forward.findings] == ["PROPERTY_ADDED"]
    set_properties(oms, "feature", "Employee", *base, prop("nickname", required=True))
    assert validate(oms, "feature").passed
    assert not validate(oms, "feature", h.COMPATIBILITY_MODE_BACKWARD).passed


def test_a_property_deprecated_on_main_can_then_be_removed_without_breaking(oms):
    oms.create("main", object_type("Employee", prop("fax")))
    base = [prop("id", required=True), prop("name")]

    oms.branch("deprecate")
    set_properties(oms, "deprecate", "Employee", *base, prop("fax", deprecated=True))
    deprecation = validate(oms, "deprecate")
    assert deprecation.passed
    assert [f.rule_id for f in deprecation.findings] == ["PROPERTY_DEPRECATED"]
    assert oms.get("deprecate", "Employee").properties[2].deprecated

    oms.branch("too-soon", source="deprecate", base_branch="main")
    set_properties(oms, "too-soon", "Employee", *base)
    assert not validate(oms, "too-soon").passed, "the deprecation has not reached main yet"

    oms.merge("deprecate")
    oms.branch("remove")
    set_properties(oms, "remove", "Employee", *base)
    removal = validate(oms, "remove")
    assert removal.passed, removal.findings
    assert [f.rule_id for f in removal.findings] == ["DEPRECATED_PROPERTY_DELETED"]
    assert oms.merge("remove").outcome == bs.MERGE_OUTCOME_FAST_FORWARD


def test_an_undeprecated_property_is_stored_as_it_always_was(oms):
    """``deprecated: false`` is not stored: resources written before the flag keep their etag."""
    oms.create("main", object_type("Employee", prop("fax")))
    etag = oms.get("main", "Employee").etag
    base = [prop("id", required=True), prop("name")]
    set_properties(oms, "main", "Employee", *base, prop("fax", deprecated=False))
    assert oms.get("main", "Employee").etag == etag


def test_an_update_applies_the_defaults_a_create_applies(oms):
    oms.create("main", object_type("Employee"))
    set_properties(oms, "main", "Employee", prop("id", required=True), prop("name"), prop("fax"))
    fax = oms.get("main", "Employee").properties[2]
    assert (fax.api_name, fax.display_name) == ("fax", "fax")


def update_main(oms, reason="the release policy", **fields):
    return oms.branches.UpdateBranch(
        bs.UpdateBranchRequest(
            branch=h.Branch(name="main", **fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
            reason=reason,
        ),
        metadata=oms.admin,
        timeout=10,
    )


def test_a_transitive_mode_checks_every_released_version(oms):
    """Schema Registry's example: each step is BACKWARD, the two together are not."""
    base = [prop("id", required=True), prop("name")]
    level = prop("level", base=r.BASE_TYPE_INTEGER, deprecated=True)
    oms.create("main", object_type("Employee", level))
    oms.tags.CreateTag(ts.CreateTagRequest(name="v1", target="main"), metadata=oms.admin)

    oms.branch("remove")
    set_properties(oms, "remove", "Employee", *base)
    oms.merge("remove")
    oms.branch("readd")
    set_properties(oms, "readd", "Employee", *base, prop("level"))

    assert validate(oms, "readd").passed
    transitive = validate(oms, "readd", h.COMPATIBILITY_MODE_BACKWARD_TRANSITIVE)
    assert not transitive.passed
    (breaking,) = [f for f in transitive.findings if f.severity == h.SEVERITY_BREAKING]
    assert (breaking.rule_id, breaking.against) == ("PROPERTY_TYPE_CHANGED", "v1")
    assert breaking.path == "object-types/Employee.properties[level].data_type"

    update_main(oms, compatibility_mode=h.COMPATIBILITY_MODE_BACKWARD_TRANSITIVE)
    with pytest.raises(grpc.RpcError) as refused:
        oms.merge("readd")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "BREAKING_CHANGES"
    with pytest.raises(grpc.RpcError) as direct:
        set_properties(oms, "main", "Employee", *base, prop("level"))
    assert reason(direct.value) == "BREAKING_CHANGES"


def test_a_branch_exempts_named_rules_and_only_those(oms):
    base = [prop("id", required=True), prop("name")]
    oms.create("main", object_type("Employee", prop("fax"), prop("telex")))
    with pytest.raises(grpc.RpcError) as unknown:
        update_main(oms, compatibility_exemptions=["PROPERTY_DELETED", "NO_SUCH_RULE"])
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(unknown.value) == ["branch.compatibility_exemptions[1]"]

    exempting = update_main(oms, compatibility_exemptions=["PROPERTY_DELETED"])
    assert list(exempting.compatibility_exemptions) == ["PROPERTY_DELETED"]
    set_properties(oms, "main", "Employee", *base, prop("telex"))
    assert [p.api_name for p in oms.get("main", "Employee").properties] == ["id", "name", "telex"]

    oms.branch("narrow")
    set_properties(oms, "narrow", "Employee", *base, prop("telex", required=True))
    with pytest.raises(grpc.RpcError) as narrowed:
        oms.merge("narrow")
    assert reason(narrowed.value) == "BREAKING_CHANGES", "PROPERTY_MADE_REQUIRED is not exempted"

    oms.branch("drop")
    set_properties(oms, "drop", "Employee", *base)
    assert not validate(oms, "drop").passed, "a branch validates under its own exemptions"
    (dropped,) = oms.merge("drop").findings
    assert (dropped.rule_id, dropped.exempted) == ("PROPERTY_DELETED", True)
    assert dropped.severity == h.SEVERITY_WARNING
