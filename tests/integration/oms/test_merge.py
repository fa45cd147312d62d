"""Merges and validation over a real server.

Fast-forward, three-way, squash, conflicts, protected targets.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import details, reason
from tests.support.oms import object_type, prop


def describe(oms, branch, api_name, text):
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch=branch,
            object_type=r.ObjectType(api_name=api_name, description=text),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=oms.admin,
    )


def test_fast_forward_merge(oms):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    head = oms.head("feature")
    merged = oms.merge("feature")
    assert merged.outcome == bs.MERGE_OUTCOME_FAST_FORWARD
    assert merged.commit.id == head == oms.head("main")
    assert oms.names("main") == ["Employee"]
    again = oms.merge("feature")
    assert again.outcome == bs.MERGE_OUTCOME_UP_TO_DATE
    assert again.commit.id == head


def test_three_way_merge_combines_both_sides_field_by_field(oms):
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    oms.create("feature", object_type("Project"))
    describe(oms, "feature", "Employee", "from feature")
    oms.create("main", object_type("Company"))
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="main",
            object_type=r.ObjectType(api_name="Employee", display_name="Staff member"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=oms.admin,
    )
    main_head, feature_head = oms.head("main"), oms.head("feature")
    merged = oms.merge("feature", message="Bring feature in")
    assert merged.outcome == bs.MERGE_OUTCOME_MERGE_COMMIT
    assert list(merged.commit.parents) == [main_head, feature_head]
    assert merged.commit.message == "Bring feature in"
    assert oms.names("main") == ["Company", "Employee", "Project"]
    employee = oms.get("main", "Employee")
    assert (employee.display_name, employee.description) == ("Staff member", "from feature")
    log = oms.branches.ListCommits(bs.ListCommitsRequest(branch="main"), metadata=oms.admin)
    assert feature_head in [c.id for c in log.commits]


def test_squash_merge_writes_one_commit_with_one_parent(oms):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    oms.create("feature", object_type("Company"))
    main_head, feature_head = oms.head("main"), oms.head("feature")
    merged = oms.merge("feature", strategy=bs.MERGE_STRATEGY_SQUASH)
    assert merged.outcome == bs.MERGE_OUTCOME_SQUASH
    assert list(merged.commit.parents) == [main_head]
    assert oms.names("main") == ["Company", "Employee"]
    log = oms.branches.ListCommits(bs.ListCommitsRequest(branch="main"), metadata=oms.admin)
    assert feature_head not in [c.id for c in log.commits]
    assert len(log.commits) == 2


def test_conflicts_are_typed_and_nothing_is_written(oms):
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    describe(oms, "feature", "Employee", "theirs")
    oms.create("feature", object_type("Project"))
    describe(oms, "main", "Employee", "ours")
    main_head = oms.head("main")
    before = oms.get("main", "Employee")
    with pytest.raises(grpc.RpcError) as caught:
        oms.merge("feature")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "MERGE_CONFLICT"
    conflicts = details(caught.value)["MergeConflict"]
    assert [(c.resource, c.path, c.kind) for c in conflicts] == [
        ("object-types/Employee", "description", h.CONFLICT_KIND_BOTH_MODIFIED)
    ]
    values = [
        json_format.MessageToDict(v)
        for v in (conflicts[0].base, conflicts[0].ours, conflicts[0].theirs)
    ]
    assert values == ["", "ours", "theirs"]
    assert oms.head("main") == main_head
    assert oms.get("main", "Employee") == before
    assert oms.names("main") == ["Employee"]


def test_modified_versus_deleted_conflicts(oms):
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    oms.schema.DeleteObjectType(
        ss.DeleteObjectTypeRequest(branch="feature", api_name="Employee"), metadata=oms.admin
    )
    describe(oms, "main", "Employee", "still here")
    with pytest.raises(grpc.RpcError) as caught:
        oms.merge("feature")
    kinds = {c.kind for c in details(caught.value)["MergeConflict"]}
    assert kinds == {h.CONFLICT_KIND_MODIFIED_DELETED}


def test_breaking_merge_into_main_is_refused_unless_forced_by_an_admin(oms):
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="feature",
            object_type=object_type("Employee", prop("email", base=r.BASE_TYPE_INTEGER)),
        ),
        metadata=oms.admin,
    )
    validation = oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch="feature"), metadata=oms.admin
    )
    assert not validation.passed
    assert validation.base_commit == oms.head("main")
    assert any(f.severity == h.SEVERITY_BREAKING for f in validation.findings)
    main_head = oms.head("main")

    with pytest.raises(grpc.RpcError) as refused:
        oms.merge("feature")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "BREAKING_CHANGES"
    assert details(refused.value)["ValidationFinding"]
    with pytest.raises(grpc.RpcError) as not_admin:
        oms.branches.MergeBranch(
            bs.MergeBranchRequest(branch="feature", force=True, force_reason="because"),
            metadata=oms.metadata(("branch:merge",)),
        )
    assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert oms.head("main") == main_head

    forced = oms.merge("feature", force=True, force_reason="Migration 42 converts the data")
    assert forced.outcome == bs.MERGE_OUTCOME_MERGE_COMMIT
    assert forced.commit.forced
    assert forced.commit.force_reason == "Migration 42 converts the data"
    assert any(f.severity == h.SEVERITY_BREAKING for f in forced.findings)
    stored = oms.branches.GetCommit(bs.GetCommitRequest(id=oms.head("main")), metadata=oms.admin)
    assert stored.force_reason == "Migration 42 converts the data"
    assert oms.get("main", "Employee").properties[2].data_type.base == r.BASE_TYPE_INTEGER


def test_validation_modes_and_explicit_ref(oms):
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature", compatibility_mode=h.COMPATIBILITY_MODE_NONE)
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="feature",
            object_type=object_type("Employee", prop("email", required=True)),
        ),
        metadata=oms.admin,
    )
    none = oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch="feature"), metadata=oms.admin
    )
    assert none.passed and none.mode == h.COMPATIBILITY_MODE_NONE
    backward = oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch="feature", mode=h.COMPATIBILITY_MODE_BACKWARD),
        metadata=oms.metadata(("schema:read",)),
    )
    assert not backward.passed
    assert [f.path for f in backward.findings if f.severity == h.SEVERITY_BREAKING] == [
        "object-types/Employee.properties[email].required"
    ]
    against_self = oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch="feature", against="feature"), metadata=oms.admin
    )
    assert against_self.passed and not against_self.findings


def test_merge_refuses_unknown_and_self_targets(oms):
    oms.branch("feature")
    with pytest.raises(grpc.RpcError) as itself:
        oms.merge("feature", target="feature")
    assert itself.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        oms.merge("nope")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_merge_that_would_leave_a_dangling_reference_writes_nothing(oms):
    oms.branch("target")
    oms.create("target", object_type("Employee"))
    oms.create("target", object_type("Company"))
    oms.branch("feature", source="target")
    oms.schema.CreateLinkType(
        ss.CreateLinkTypeRequest(
            branch="feature",
            link_type=r.LinkType(
                api_name="worksFor",
                from_object_type="Employee",
                to_object_type="Company",
                cardinality=r.CARDINALITY_MANY_TO_ONE,
            ),
        ),
        metadata=oms.admin,
    )
    oms.schema.DeleteObjectType(
        ss.DeleteObjectTypeRequest(branch="target", api_name="Company"), metadata=oms.admin
    )
    head = oms.head("target")
    with pytest.raises(grpc.RpcError) as caught:
        oms.merge("feature", target="target")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "MERGE_INVALID"
    fields = [v.field for v in details(caught.value)["BadRequest"][0].field_violations]
    assert "link-types/worksFor" in fields
    assert oms.head("target") == head
    assert oms.names("target") == ["Employee"]
