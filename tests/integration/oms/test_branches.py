"""Branches, history, commits and diffs over a real server."""

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


def test_main_exists_protected_and_cannot_be_deleted(oms):
    main = oms.branches.GetBranch(bs.GetBranchRequest(name="main"), metadata=oms.admin)
    assert main.protected
    assert main.compatibility_mode == h.COMPATIBILITY_MODE_BACKWARD
    assert main.head_commit.id == main.head
    assert main.head_commit.message == "Initial commit"
    with pytest.raises(grpc.RpcError) as refused:
        oms.branches.DeleteBranch(bs.DeleteBranchRequest(name="main"), metadata=oms.admin)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "BRANCH_PROTECTED"


def test_branches_from_a_branch_and_from_a_commit(oms):
    oms.create("main", object_type("Employee"))
    first = oms.head("main")
    oms.create("main", object_type("Company"))

    from_branch = oms.branch("feature")
    assert from_branch.head == oms.head("main")
    assert from_branch.base_branch == "main"
    assert from_branch.creator == "admin"
    assert oms.names("feature") == ["Company", "Employee"]

    from_commit = oms.branch("hotfix", source=first)
    assert from_commit.head == first
    assert from_commit.base_branch == "main"
    assert oms.names("hotfix") == ["Employee"]

    oms.create("feature", object_type("Project"))
    assert oms.names("main") == ["Company", "Employee"]
    assert oms.names("feature") == ["Company", "Employee", "Project"]

    with pytest.raises(grpc.RpcError) as exists:
        oms.branch("feature")
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as bad:
        oms.branch("no/slashes")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        oms.branch("other", source="nope")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_unknown_compatibility_mode_is_refused_by_field(oms):
    calls = {
        "compatibility_mode": lambda: oms.branch("b9", compatibility_mode=99),
        "branch.compatibility_mode": lambda: oms.branches.UpdateBranch(
            bs.UpdateBranchRequest(
                branch=h.Branch(name="main", compatibility_mode=-5),
                update_mask=field_mask_pb2.FieldMask(paths=["compatibility_mode"]),
            ),
            metadata=oms.admin,
        ),
        "mode": lambda: oms.branches.ValidateBranch(
            bs.ValidateBranchRequest(branch="main", mode=42), metadata=oms.admin
        ),
    }
    for field, call in calls.items():
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        (bad,) = details(caught.value)["BadRequest"]
        assert [(v.field, v.reason) for v in bad.field_violations] == [(field, "INVALID_VALUE")]
    main = oms.branches.GetBranch(bs.GetBranchRequest(name="main"), metadata=oms.admin)
    assert main.compatibility_mode == h.COMPATIBILITY_MODE_BACKWARD
    assert "b9" not in [
        b.name
        for b in oms.branches.ListBranches(bs.ListBranchesRequest(), metadata=oms.admin).branches
    ]


def test_list_update_and_delete_branches(oms):
    for name in ("b1", "b2", "b3"):
        oms.branch(name)
    page = oms.branches.ListBranches(bs.ListBranchesRequest(page_size=2), metadata=oms.admin)
    names = [b.name for b in page.branches]
    page = oms.branches.ListBranches(
        bs.ListBranchesRequest(page_size=2, page_token=page.next_page_token), metadata=oms.admin
    )
    names += [b.name for b in page.branches]
    assert names == ["b1", "b2", "b3", "main"]
    assert not page.next_page_token

    updated = oms.branches.UpdateBranch(
        bs.UpdateBranchRequest(
            branch=h.Branch(name="b1", compatibility_mode=h.COMPATIBILITY_MODE_FULL),
            update_mask=field_mask_pb2.FieldMask(paths=["compatibility_mode"]),
        ),
        metadata=oms.admin,
    )
    assert updated.compatibility_mode == h.COMPATIBILITY_MODE_FULL
    with pytest.raises(grpc.RpcError) as not_admin:
        oms.branches.UpdateBranch(
            bs.UpdateBranchRequest(
                branch=h.Branch(name="b1", protected=True),
                update_mask=field_mask_pb2.FieldMask(paths=["protected"]),
            ),
            metadata=oms.metadata(("branch:create",)),
        )
    assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for setting in (
        h.Branch(name="main", compatibility_mode=h.COMPATIBILITY_MODE_NONE),
        h.Branch(name="main", base_branch="b1"),
    ):
        with pytest.raises(grpc.RpcError) as lowering:
            oms.branches.UpdateBranch(
                bs.UpdateBranchRequest(
                    branch=setting,
                    update_mask=field_mask_pb2.FieldMask(
                        paths=[
                            "compatibility_mode" if setting.compatibility_mode else "base_branch"
                        ]
                    ),
                ),
                metadata=oms.metadata(("branch:create",)),
            )
        assert lowering.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason(lowering.value) == "ADMIN_REQUIRED"
    main = oms.branches.GetBranch(bs.GetBranchRequest(name="main"), metadata=oms.admin)
    assert (main.compatibility_mode, main.base_branch) == (h.COMPATIBILITY_MODE_BACKWARD, "main")

    oms.branches.DeleteBranch(bs.DeleteBranchRequest(name="b2"), metadata=oms.admin)
    with pytest.raises(grpc.RpcError) as gone:
        oms.branches.GetBranch(bs.GetBranchRequest(name="b2"), metadata=oms.admin)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as denied:
        oms.branches.DeleteBranch(
            bs.DeleteBranchRequest(name="b3"), metadata=oms.metadata(("schema:write",))
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_history_per_branch_and_per_resource(oms):
    oms.branch("work")
    oms.create("work", object_type("Employee"), message="Add Employee")
    oms.create("work", object_type("Company"), message="Add Company")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="work",
            object_type=r.ObjectType(api_name="Employee", description="paid"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            message="Describe Employee",
        ),
        metadata=oms.admin,
    )
    messages = []
    token = ""
    while True:
        page = oms.branches.ListCommits(
            bs.ListCommitsRequest(branch="work", page_size=2, page_token=token),
            metadata=oms.admin,
        )
        messages += [c.message for c in page.commits]
        token = page.next_page_token
        if not token:
            break
    assert messages == ["Describe Employee", "Add Company", "Add Employee", "Initial commit"]

    per_resource = oms.branches.ListCommits(
        bs.ListCommitsRequest(branch="work", resource="object-types/Employee"), metadata=oms.admin
    )
    assert [c.message for c in per_resource.commits] == ["Describe Employee", "Add Employee"]
    paged, token = [], ""
    for _ in range(5):
        page = oms.branches.ListCommits(
            bs.ListCommitsRequest(
                branch="work", resource="object-types/Employee", page_size=1, page_token=token
            ),
            metadata=oms.admin,
        )
        paged += [c.message for c in page.commits]
        token = page.next_page_token
        if not token:
            break
    assert paged == ["Describe Employee", "Add Employee"]
    with pytest.raises(grpc.RpcError) as bad_key:
        oms.branches.ListCommits(
            bs.ListCommitsRequest(branch="work", resource="nonsense"), metadata=oms.admin
        )
    assert bad_key.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(bad_key.value)["BadRequest"][0].field_violations
    assert [v.field for v in violations] == ["resource"]
    assert all(c.author == "admin" for c in per_resource.commits)

    commit = oms.branches.GetCommit(
        bs.GetCommitRequest(id=per_resource.commits[0].id), metadata=oms.admin
    )
    assert [(c.resource, c.change_type) for c in commit.changes] == [
        ("object-types/Employee", h.CHANGE_TYPE_MODIFIED)
    ]
    assert commit.create_time.seconds > 0
    assert (
        oms.branches.ListCommits(bs.ListCommitsRequest(branch="main"), metadata=oms.admin)
        .commits[0]
        .message
        == "Initial commit"
    )


def test_diff_between_refs_per_resource_and_field(oms):
    oms.create("main", object_type("Employee", prop("email")))
    oms.create("main", object_type("Company"))
    oms.branch("work")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="work",
            object_type=object_type("Employee", prop("email", required=True)),
        ),
        metadata=oms.admin,
    )
    oms.create("work", object_type("Project"))
    diff = oms.branches.DiffRefs(bs.DiffRefsRequest(base="main", head="work"), metadata=oms.admin)
    assert diff.base_commit == oms.head("main") and diff.head_commit == oms.head("work")
    changes = {c.resource: c for c in diff.changes}
    assert set(changes) == {"object-types/Employee", "object-types/Project"}
    assert changes["object-types/Project"].change_type == h.CHANGE_TYPE_ADDED
    employee = changes["object-types/Employee"]
    assert employee.change_type == h.CHANGE_TYPE_MODIFIED
    fields = {
        f.path: (json_format.MessageToDict(f.old_value), json_format.MessageToDict(f.new_value))
        for f in employee.fields
    }
    assert fields == {"properties[email].required": (False, True)}

    first = oms.branches.DiffRefs(
        bs.DiffRefsRequest(base="main", head="work", page_size=1), metadata=oms.admin
    )
    second = oms.branches.DiffRefs(
        bs.DiffRefsRequest(base="main", head="work", page_size=1, page_token=first.next_page_token),
        metadata=oms.admin,
    )
    assert [c.resource for c in (*first.changes, *second.changes)] == sorted(changes)
    assert not second.next_page_token
    reverse = oms.branches.DiffRefs(
        bs.DiffRefsRequest(base="work", head=diff.base_commit), metadata=oms.admin
    )
    assert {c.resource: c.change_type for c in reverse.changes}["object-types/Project"] == (
        h.CHANGE_TYPE_DELETED
    )
