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
    assert list(deleted.breaking_in) == [h.COMPATIBILITY_MODE_BACKWARD, h.COMPATIBILITY_MODE_FULL]
    assert deleted.schema_registry_difference == "REMOVAL_PROTECTION"
    assert list(by_id["PROPERTY_ADDED"].breaking_in) == []
    assert list(by_id["PROPERTY_TYPE_WIDENED"].breaking_in) == [
        h.COMPATIBILITY_MODE_FORWARD,
        h.COMPATIBILITY_MODE_FULL,
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
