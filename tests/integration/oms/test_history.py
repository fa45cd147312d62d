"""History you can work with: resolutions, rebase, revert, tags, refs, commits' changes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from oms import convert
from oms.servicers import COMMIT_HEADER
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from oms.v1 import tag_service_pb2 as ts
from tests.support.errors import details, reason, violated_fields
from tests.support.oms import Client, object_type
from tests.support.outbox import last_seq, outbox_rows

EMPLOYEE = "object-types/Employee"


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def describe(oms: Client, branch: str, api_name: str, text: str) -> None:
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch=branch,
            object_type=r.ObjectType(api_name=api_name, description=text),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=oms.admin,
    )


def resolution(path: str, choice: int, value: Any = None, **kwargs: Any) -> h.MergeResolution:
    if value is not None:
        kwargs["value"] = convert.to_value(value)
    return h.MergeResolution(resource=EMPLOYEE, path=path, choice=choice, **kwargs)


def diverged(oms: Client) -> None:
    """Employee on main and feature, its description changed differently on each."""
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    describe(oms, "feature", "Employee", "theirs")
    describe(oms, "main", "Employee", "ours")


def test_a_merge_takes_resolutions_and_refuses_one_that_settles_nothing(oms: Client) -> None:
    diverged(oms)
    stray = resolution("display_name", h.RESOLUTION_CHOICE_OURS)
    error = refused(lambda: oms.merge("feature", resolutions=[stray]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["resolutions[0]"]
    merged = oms.merge(
        "feature", resolutions=[resolution("description", h.RESOLUTION_CHOICE_THEIRS)]
    )
    assert merged.outcome == bs.MERGE_OUTCOME_MERGE_COMMIT
    assert oms.get("main", "Employee").description == "theirs"
    assert [(c.resource, c.change_type) for c in merged.commit.changes] == [
        (EMPLOYEE, h.CHANGE_TYPE_MODIFIED)
    ]


def test_a_supplied_value_is_checked_with_the_whole_result(oms: Client, oms_settings: Any) -> None:
    diverged(oms)
    before = last_seq(oms_settings.database_url)
    bad = resolution("description", h.RESOLUTION_CHOICE_VALUE, 5)
    error = refused(lambda: oms.merge("feature", resolutions=[bad]))
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "MERGE_INVALID")
    assert violated_fields(error) == [EMPLOYEE]
    rows = outbox_rows(oms_settings.database_url, after=before)
    assert [(r.type, r.data["reason"]) for r in rows] == [
        ("oms.branch.merge_refused", "MERGE_INVALID")
    ]
    no_choice = refused(lambda: oms.merge("feature", resolutions=[resolution("description", 0)]))
    assert violated_fields(no_choice) == ["resolutions[0].choice"]


def test_rebase_replays_the_branch_on_its_base_as_one_commit(oms: Client) -> None:
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    oms.create("feature", object_type("Project"))
    oms.create("feature", object_type("Team"))
    oms.create("main", object_type("Office"))
    main_head, old_head = oms.head("main"), oms.head("feature")
    error = refused(
        lambda: oms.branches.RebaseBranch(
            bs.RebaseBranchRequest(branch="feature", expected_head=main_head), metadata=oms.admin
        )
    )
    assert reason(error) == "BRANCH_HEAD_MOVED"
    rebased = oms.branches.RebaseBranch(
        bs.RebaseBranchRequest(branch="feature", expected_head=old_head), metadata=oms.admin
    )
    assert rebased.outcome == bs.REBASE_OUTCOME_REBASED
    assert rebased.onto_commit == main_head
    assert list(rebased.commit.parents) == [main_head]
    assert [c.resource for c in rebased.commit.changes] == [
        "object-types/Project",
        "object-types/Team",
    ]
    assert oms.head("feature") == rebased.commit.id
    assert oms.names("feature") == ["Employee", "Office", "Project", "Team"]
    again = oms.branches.RebaseBranch(bs.RebaseBranchRequest(branch="feature"), metadata=oms.admin)
    assert again.outcome == bs.REBASE_OUTCOME_UP_TO_DATE
    assert oms.merge("feature").outcome == bs.MERGE_OUTCOME_FAST_FORWARD


def test_rebase_conflicts_like_a_merge_and_takes_the_same_resolutions(
    oms: Client, oms_settings: Any
) -> None:
    diverged(oms)
    before = last_seq(oms_settings.database_url)
    error = refused(
        lambda: oms.branches.RebaseBranch(
            bs.RebaseBranchRequest(branch="feature"), metadata=oms.admin
        )
    )
    assert reason(error) == "MERGE_CONFLICT"
    assert [c.path for c in details(error)["MergeConflict"]] == ["description"]
    rows = outbox_rows(oms_settings.database_url, after=before)
    assert [(r.type, r.data["reason"]) for r in rows] == [
        ("oms.branch.rebase_refused", "MERGE_CONFLICT")
    ]
    settled = resolution("description", h.RESOLUTION_CHOICE_VALUE, "both")
    rebased = oms.branches.RebaseBranch(
        bs.RebaseBranchRequest(branch="feature", resolutions=[settled]), metadata=oms.admin
    )
    assert rebased.outcome == bs.REBASE_OUTCOME_REBASED
    assert oms.get("feature", "Employee").description == "both"
    protected = refused(
        lambda: oms.branches.RebaseBranch(
            bs.RebaseBranchRequest(branch="main", onto="feature"), metadata=oms.admin
        )
    )
    assert reason(protected) == "BRANCH_PROTECTED"


def test_revert_undoes_a_commit_and_conflicts_with_later_changes(oms: Client) -> None:
    oms.branch("work")
    oms.create("work", object_type("Employee"))
    oms.create("work", object_type("Project"))
    added = oms.head("work")
    describe(oms, "work", "Employee", "first")
    described = oms.head("work")
    describe(oms, "work", "Employee", "second")
    second = oms.head("work")
    reverted = oms.branches.RevertCommit(
        bs.RevertCommitRequest(branch="work", commit=added[:10]), metadata=oms.admin
    )
    assert list(reverted.parents) == [second]
    assert oms.names("work") == ["Employee"]
    assert [(c.resource, c.change_type) for c in reverted.changes] == [
        ("object-types/Project", h.CHANGE_TYPE_DELETED)
    ]
    error = refused(
        lambda: oms.branches.RevertCommit(
            bs.RevertCommitRequest(branch="work", commit=described), metadata=oms.admin
        )
    )
    assert reason(error) == "MERGE_CONFLICT"
    conflict = details(error)["MergeConflict"][0]
    assert [
        json_format.MessageToDict(v) for v in (conflict.base, conflict.ours, conflict.theirs)
    ] == [
        "first",
        "second",
        "",
    ]
    oms.branches.RevertCommit(
        bs.RevertCommitRequest(
            branch="work",
            commit=described,
            resolutions=[resolution("description", h.RESOLUTION_CHOICE_THEIRS)],
        ),
        metadata=oms.admin,
    )
    assert oms.get("work", "Employee").description == ""
    again = refused(
        lambda: oms.branches.RevertCommit(
            bs.RevertCommitRequest(branch="work", commit=added), metadata=oms.admin
        )
    )
    assert reason(again) == "NOTHING_TO_REVERT"


def test_revert_refuses_a_commit_off_the_branch_and_the_first_commit(oms: Client) -> None:
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    off = refused(
        lambda: oms.branches.RevertCommit(
            bs.RevertCommitRequest(branch="main", commit="feature"), metadata=oms.admin
        )
    )
    assert reason(off) == "COMMIT_NOT_ON_BRANCH"
    first = refused(
        lambda: oms.branches.RevertCommit(
            bs.RevertCommitRequest(branch="main", commit="main"), metadata=oms.admin
        )
    )
    assert first.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(first) == ["commit"]


def test_tags_name_commits_for_good(oms: Client) -> None:
    oms.create("main", object_type("Employee"))
    tag = oms.tags.CreateTag(
        ts.CreateTagRequest(name="v1", target="main", message="first release"), metadata=oms.admin
    )
    assert tag.commit == oms.head("main") and tag.target_commit.id == tag.commit
    assert tag.creator == "admin"
    oms.create("main", object_type("Project"))
    assert oms.names("main") == ["Employee", "Project"]
    old = oms.schema.ListObjectTypes(
        ss.ListObjectTypesRequest(branch="main", revision="v1"), metadata=oms.admin
    )
    assert [o.api_name for o in old.object_types] == ["Employee"]
    taken = refused(
        lambda: oms.tags.CreateTag(
            ts.CreateTagRequest(name="v1", target="main"), metadata=oms.admin
        )
    )
    assert (taken.code(), reason(taken)) == (grpc.StatusCode.ALREADY_EXISTS, "TAG_EXISTS")
    branch = refused(
        lambda: oms.tags.CreateTag(
            ts.CreateTagRequest(name="main", target="v1"), metadata=oms.admin
        )
    )
    assert reason(branch) == "BRANCH_EXISTS"
    oms.tags.CreateTag(ts.CreateTagRequest(name="v0", target="v1~1"), metadata=oms.admin)
    listed = oms.tags.ListTags(ts.ListTagsRequest(page_size=1), metadata=oms.admin)
    assert [t.name for t in listed.tags] == ["v0"] and listed.next_page_token
    rest = oms.tags.ListTags(
        ts.ListTagsRequest(page_token=listed.next_page_token), metadata=oms.admin
    )
    assert [t.name for t in rest.tags] == ["v1"]
    reader = oms.metadata(("schema:read", "branch:create"))
    denied = refused(lambda: oms.tags.DeleteTag(ts.DeleteTagRequest(name="v1"), metadata=reader))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    oms.tags.DeleteTag(ts.DeleteTagRequest(name="v1"), metadata=oms.admin)
    gone = refused(lambda: oms.tags.GetTag(ts.GetTagRequest(name="v1"), metadata=oms.admin))
    assert (gone.code(), reason(gone)) == (grpc.StatusCode.NOT_FOUND, "TAG_NOT_FOUND")
    unknown = refused(lambda: oms.get("main", "Employee", revision="v1"))
    assert (unknown.code(), reason(unknown)) == (grpc.StatusCode.NOT_FOUND, "REF_NOT_FOUND")


def test_every_ref_field_takes_short_ids_and_ancestors(oms: Client) -> None:
    oms.create("main", object_type("Employee"))
    oms.create("main", object_type("Project"))
    head = oms.head("main")
    commit = oms.branches.GetCommit(bs.GetCommitRequest(id=head[:7]), metadata=oms.admin)
    assert commit.id == head
    parent = oms.branches.GetCommit(bs.GetCommitRequest(id="main~1"), metadata=oms.admin)
    assert parent.id == commit.parents[0]
    diff = oms.branches.DiffRefs(
        bs.DiffRefsRequest(base="main~1", head=head[:9]), metadata=oms.admin
    )
    assert [c.resource for c in diff.changes] == ["object-types/Project"]
    log = oms.branches.ListCommits(bs.ListCommitsRequest(branch="main~1"), metadata=oms.admin)
    assert log.commits[0].id == parent.id
    oms.branch("old", source="main~1")
    assert oms.names("old") == ["Employee"]
    check = oms.branches.ValidateBranch(
        bs.ValidateBranchRequest(branch="main", against="main~2"), metadata=oms.admin
    )
    assert (
        check.base_commit
        == oms.branches.GetCommit(bs.GetCommitRequest(id="main~2"), metadata=oms.admin).id
    )
    too_far = refused(
        lambda: oms.branches.GetCommit(bs.GetCommitRequest(id="main~3"), metadata=oms.admin)
    )
    assert reason(too_far) == "REF_NOT_FOUND"


def test_a_write_names_its_commit_in_the_response_metadata(oms: Client) -> None:
    oms.branch("work")
    created, call = oms.schema.CreateObjectType.with_call(
        ss.CreateObjectTypeRequest(branch="work", object_type=object_type("Employee")),
        metadata=oms.admin,
    )
    assert created.api_name == "Employee"
    assert dict(call.initial_metadata())[COMMIT_HEADER] == oms.head("work")
    _, call = oms.schema.DeleteObjectType.with_call(
        ss.DeleteObjectTypeRequest(branch="work", api_name="Employee"), metadata=oms.admin
    )
    assert dict(call.initial_metadata())[COMMIT_HEADER] == oms.head("work")


def test_commits_list_their_changes_up_to_a_bound(oms: Client) -> None:
    many = [ss.Change(upsert={"object_type": object_type(f"Type{i:03}")}) for i in range(101)]
    big = oms.schema.CommitChanges(
        ss.CommitChangesRequest(branch="main", message="many", changes=many), metadata=oms.admin
    )
    assert (len(big.changes), big.change_count, big.changes_truncated) == (100, 101, True)
    oms.create("main", object_type("Small"))
    log = oms.branches.ListCommits(bs.ListCommitsRequest(branch="main"), metadata=oms.admin)
    assert [(c.change_count, c.changes_truncated) for c in log.commits] == [
        (1, False),
        (101, True),
        (0, False),
    ]
    assert log.commits[0].changes[0].resource == "object-types/Small"
    branch = oms.branches.GetBranch(bs.GetBranchRequest(name="main"), metadata=oms.admin)
    assert branch.head_commit.change_count == 1


def test_a_breaking_revert_on_a_protected_branch_needs_an_admins_force(
    oms: Client, oms_settings: Any
) -> None:
    oms.create("main", object_type("Employee"))
    added = oms.head("main")
    before = last_seq(oms_settings.database_url)
    writer = oms.metadata(("schema:write", "schema:read"))
    revert = bs.RevertCommitRequest(branch="main", commit=added)
    error = refused(lambda: oms.branches.RevertCommit(revert, metadata=writer))
    assert reason(error) == "BREAKING_CHANGES"
    assert [f.rule_id for f in details(error)["ValidationFinding"]] == ["OBJECT_TYPE_DELETED"]
    rows = outbox_rows(oms_settings.database_url, after=before)
    assert [(r.type, r.data["reason"]) for r in rows] == [
        ("oms.commit.revert_refused", "BREAKING_CHANGES")
    ]
    forced = oms.branches.RevertCommit(
        bs.RevertCommitRequest(
            branch="main", commit=added, force=True, force_reason="added by mistake"
        ),
        metadata=oms.admin,
    )
    assert (forced.forced, forced.force_reason) == (True, "added by mistake")
    assert oms.names("main") == []
    reverted = outbox_rows(oms_settings.database_url, after=before)[-1]
    assert (reverted.type, reverted.data["reverted"], reverted.data["forced"]) == (
        "oms.commit.reverted",
        added,
        True,
    )


def test_pages_of_commits_and_tags_with_long_messages_stop_at_their_byte_bound(
    oms: Client,
) -> None:
    """Each page goes on where the last one stopped: nothing is skipped or repeated."""
    oms.branch("long")
    long = "m" * 19_990  # near the 20,000 characters a message may hold
    for n in range(120):
        oms.create("long", object_type(f"Long{n}"), message=f"{n:03d} {long}")
        oms.tags.CreateTag(
            ts.CreateTagRequest(name=f"long-{n:03d}", target="long", message=long),
            metadata=oms.admin,
        )

    def every(call: Any, request: Any, field: str) -> list[list[Any]]:
        found = []
        while True:
            page = call(request, metadata=oms.admin, timeout=30)
            found.append(list(getattr(page, field)))
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    pages = every(
        oms.branches.ListCommits, bs.ListCommitsRequest(branch="long", page_size=1000), "commits"
    )
    assert len(pages) == 2 and 90 < len(pages[0]) < 110  # 2 MiB holds about a hundred
    commits = [c for p in pages for c in p]
    assert [c.message[:3] for c in commits[:120]] == [f"{n:03d}" for n in reversed(range(120))]
    assert len({c.id for c in commits}) == len(commits) == 121  # and main's first commit
    pages = every(oms.tags.ListTags, ts.ListTagsRequest(page_size=1000), "tags")
    longs = [t.name for p in pages for t in p if t.name.startswith("long-")]
    assert longs == [f"long-{n:03d}" for n in range(120)] and len(pages) >= 2
    too_long = refused(lambda: oms.create("long", object_type("TooLong"), message="m" * 20_001))
    assert violated_fields(too_long) == ["message"]
    tag_too_long = refused(
        lambda: oms.tags.CreateTag(
            ts.CreateTagRequest(name="too-long", target="long", message="m" * 20_001),
            metadata=oms.admin,
        )
    )
    assert violated_fields(tag_too_long) == ["message"]
