"""Every change the OMS makes, and every attempt it refuses, is in its outbox.

Branch settings, refused merges and calls refused for their caller included; each event names
its actor and the client address.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from oms.servicers import BRANCH_SERVICE, EVENTS, SCHEMA_SERVICE, TAG_SERVICE
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from oms.v1 import tag_service_pb2 as ts
from tests.support.errors import reason
from tests.support.oms import Client, object_type, prop
from tests.support.outbox import Row, last_seq, outbox_rows

FORWARDED = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")]
"""What Envoy sends on: a client's own entry, then the address Envoy accepted."""


@pytest.fixture
def settings(oms_settings: Any) -> Any:
    runtime = dataclasses.replace(oms_settings.runtime, denial_window_seconds=60.0)
    return dataclasses.replace(oms_settings, runtime=runtime)


@pytest.fixture
def oms(start_oms: Callable[[Any], Client], settings: Any) -> Client:
    return start_oms(settings)


def _emitted(settings: Any, call: Callable[[], Any]) -> list[Row]:
    before = last_seq(settings.database_url)
    call()
    return outbox_rows(settings.database_url, after=before)


def _refused(settings: Any, call: Callable[[], Any]) -> tuple[grpc.RpcError, list[Row]]:
    before = last_seq(settings.database_url)
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value, outbox_rows(settings.database_url, after=before)


def _protect(oms: Client, branch: str, metadata: list[tuple[str, str]]) -> Any:
    return oms.branches.UpdateBranch(
        bs.UpdateBranchRequest(
            branch=h.Branch(
                name=branch, protected=True, compatibility_mode=h.COMPATIBILITY_MODE_FULL
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["protected", "compatibility_mode"]),
        ),
        metadata=metadata,
        timeout=10,
    )


def test_each_mutating_rpc_emits_the_events_its_mapping_declares(
    oms: Client, settings: Any
) -> None:
    admin = oms.admin
    calls: list[tuple[str, str, Callable[[], Any]]] = [
        (BRANCH_SERVICE, "CreateBranch", lambda: oms.branch("feature")),
        (
            SCHEMA_SERVICE,
            "CreateObjectType",
            lambda: oms.create("feature", object_type("Employee")),
        ),
        (
            SCHEMA_SERVICE,
            "UpdateObjectType",
            lambda: oms.schema.UpdateObjectType(
                ss.UpdateObjectTypeRequest(
                    branch="feature", object_type=object_type("Employee", prop("email"))
                ),
                metadata=admin,
            ),
        ),
        (
            SCHEMA_SERVICE,
            "CreateSharedProperty",
            lambda: oms.schema.CreateSharedProperty(
                ss.CreateSharedPropertyRequest(
                    branch="feature",
                    shared_property=r.SharedProperty(
                        api_name="label", data_type=r.DataType(base=r.BASE_TYPE_STRING)
                    ),
                ),
                metadata=admin,
            ),
        ),
        (
            SCHEMA_SERVICE,
            "DeleteSharedProperty",
            lambda: oms.schema.DeleteSharedProperty(
                ss.DeleteSharedPropertyRequest(branch="feature", api_name="label"),
                metadata=admin,
            ),
        ),
        (
            SCHEMA_SERVICE,
            "CommitChanges",
            lambda: oms.schema.CommitChanges(
                ss.CommitChangesRequest(
                    branch="feature",
                    message="two",
                    changes=[
                        ss.Change(upsert={"object_type": object_type("Company")}),
                        ss.Change(delete="object-types/Employee"),
                    ],
                ),
                metadata=admin,
            ),
        ),
        (
            BRANCH_SERVICE,
            "ValidateBranch",
            lambda: oms.branches.ValidateBranch(
                bs.ValidateBranchRequest(branch="feature"), metadata=admin
            ),
        ),
        (
            TAG_SERVICE,
            "CreateTag",
            lambda: oms.tags.CreateTag(
                ts.CreateTagRequest(name="v1", target="feature"), metadata=admin
            ),
        ),
        (
            BRANCH_SERVICE,
            "RevertCommit",
            lambda: oms.branches.RevertCommit(
                bs.RevertCommitRequest(branch="feature", commit="v1"), metadata=admin
            ),
        ),
        (SCHEMA_SERVICE, "CreateObjectType", lambda: oms.create("main", object_type("Office"))),
        (
            BRANCH_SERVICE,
            "RebaseBranch",
            lambda: oms.branches.RebaseBranch(
                bs.RebaseBranchRequest(branch="feature"), metadata=admin
            ),
        ),
        (
            TAG_SERVICE,
            "DeleteTag",
            lambda: oms.tags.DeleteTag(ts.DeleteTagRequest(name="v1"), metadata=admin),
        ),
        (BRANCH_SERVICE, "UpdateBranch", lambda: _protect(oms, "feature", admin)),
        (BRANCH_SERVICE, "MergeBranch", lambda: oms.merge("feature")),
        (
            BRANCH_SERVICE,
            "UpdateBranch",
            lambda: oms.branches.UpdateBranch(
                bs.UpdateBranchRequest(
                    branch=h.Branch(name="feature", protected=False),
                    update_mask=field_mask_pb2.FieldMask(paths=["protected"]),
                    reason="released",
                ),
                metadata=admin,
            ),
        ),
        (
            BRANCH_SERVICE,
            "DeleteBranch",
            lambda: oms.branches.DeleteBranch(
                bs.DeleteBranchRequest(name="feature"), metadata=admin
            ),
        ),
    ]
    for service, name, call in calls:
        rows = _emitted(settings, call)
        assert rows, f"{name} emitted nothing"
        assert {r.type for r in rows} <= set(EVENTS[f"/{service}/{name}"]), name
        assert {(r.actor, r.data["client_address"]) for r in rows} == {("admin", "127.0.0.1")}


def test_branch_settings_are_recorded_with_what_they_were(oms: Client, settings: Any) -> None:
    oms.branch("release")
    (row,) = _emitted(settings, lambda: _protect(oms, "release", oms.admin + FORWARDED))
    assert (row.type, row.subject, row.actor) == (
        "oms.branch.updated",
        "branches/release",
        "admin",
    )
    assert row.data == {
        "branch": "release",
        "fields": ["compatibility_mode", "protected"],
        "before": {"compatibility_mode": "BACKWARD", "protected": False},
        "after": {"compatibility_mode": "FULL", "protected": True},
        "client_address": "198.51.100.7",
    }


def test_a_refused_branch_setting_is_recorded_as_a_denied_call(oms: Client, settings: Any) -> None:
    oms.branch("release")
    editor = oms.metadata(("branch:create",), username="alice")
    error, rows = _refused(settings, lambda: _protect(oms, "release", editor + FORWARDED))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [(r.type, r.subject, r.actor) for r in rows] == [
        ("oms.call.denied", f"rpcs/{BRANCH_SERVICE}/UpdateBranch", "alice")
    ]
    assert (rows[0].data["reason"], rows[0].data["client_address"]) == (
        "ADMIN_REQUIRED",
        "198.51.100.7",
    )
    assert not oms.branches.GetBranch(
        bs.GetBranchRequest(name="release"), metadata=oms.admin
    ).protected


def test_a_merge_refused_for_conflicts_is_recorded(oms: Client, settings: Any) -> None:
    oms.create("main", object_type("Employee"))
    oms.branch("feature")
    for branch, text in (("feature", "theirs"), ("main", "ours")):
        oms.schema.UpdateObjectType(
            ss.UpdateObjectTypeRequest(
                branch=branch,
                object_type=r.ObjectType(api_name="Employee", description=text),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=oms.admin,
        )
    head = oms.head("main")
    error, rows = _refused(
        settings,
        lambda: oms.branches.MergeBranch(
            bs.MergeBranchRequest(branch="feature"), metadata=oms.admin + FORWARDED
        ),
    )
    assert reason(error) == "MERGE_CONFLICT"
    assert oms.head("main") == head
    assert [(r.type, r.subject, r.actor) for r in rows] == [
        ("oms.branch.merge_refused", "branches/main", "admin")
    ]
    assert rows[0].data == {
        "source": "feature",
        "target": "main",
        "reason": "MERGE_CONFLICT",
        "problems": 1,
        "client_address": "198.51.100.7",
    }


def test_a_merge_refused_for_breaking_changes_is_recorded(oms: Client, settings: Any) -> None:
    oms.create("main", object_type("Employee", prop("email")))
    oms.branch("feature")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="feature",
            object_type=object_type("Employee", prop("email", base=r.BASE_TYPE_INTEGER)),
        ),
        metadata=oms.admin,
    )
    editor = oms.metadata(("branch:merge",), username="bob")
    error, rows = _refused(
        settings,
        lambda: oms.branches.MergeBranch(bs.MergeBranchRequest(branch="feature"), metadata=editor),
    )
    assert reason(error) == "BREAKING_CHANGES"
    assert [(r.type, r.actor, r.data["reason"], r.data["client_address"]) for r in rows] == [
        ("oms.branch.merge_refused", "bob", "BREAKING_CHANGES", "127.0.0.1")
    ]
    assert rows[0].data["problems"] >= 1


def test_refused_writes_without_a_token_are_counted_not_each_written(
    oms: Client, settings: Any
) -> None:
    request = ss.CreateObjectTypeRequest(branch="main", object_type=object_type("Spam"))
    before = last_seq(settings.database_url)
    for _ in range(25):
        with pytest.raises(grpc.RpcError) as caught:
            oms.schema.CreateObjectType(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    rows = outbox_rows(settings.database_url, after=before)
    assert [(r.type, r.actor, r.data["count"], r.data["code"]) for r in rows] == [
        ("oms.call.denied", "", 1, "UNAUTHENTICATED")
    ]
    oms.server.stop()  # draining reports what the open window still counts
    rows = outbox_rows(settings.database_url, after=before)
    assert [r.data["count"] for r in rows] == [1, 24]


def test_a_write_refused_for_breaking_changes_is_recorded(oms: Client, settings: Any) -> None:
    oms.create("main", object_type("Employee", prop("email")))
    breaking = ss.UpdateObjectTypeRequest(
        branch="main",
        object_type=object_type("Employee", prop("email", base=r.BASE_TYPE_INTEGER)),
    )
    editor = oms.metadata(("schema:write",), username="bob")
    error, rows = _refused(
        settings, lambda: oms.schema.UpdateObjectType(breaking, metadata=editor + FORWARDED)
    )
    assert reason(error) == "BREAKING_CHANGES"
    assert [(r.type, r.actor, r.subject, r.data["client_address"]) for r in rows] == [
        ("oms.commit.refused", "bob", "branches/main", "198.51.100.7")
    ]
    assert rows[0].data["resources"] == ["object-types/Employee"]
    assert rows[0].data["breaking"] >= 1


def test_a_forced_write_names_the_force_and_its_reason(oms: Client, settings: Any) -> None:
    oms.create("main", object_type("Employee", prop("email")))
    forced = ss.UpdateObjectTypeRequest(
        branch="main",
        object_type=object_type("Employee", prop("email", base=r.BASE_TYPE_INTEGER)),
    )
    rows = _emitted(
        settings,
        lambda: oms.schema.CommitChanges(
            ss.CommitChangesRequest(
                branch="main",
                changes=[ss.Change(upsert=r.Resource(object_type=forced.object_type))],
                message="Employee email becomes a number",
                force=True,
                force_reason="HR migration, approved in CHG-12",
            ),
            metadata=oms.admin,
        ),
    )
    assert [(r.type, r.data.get("forced"), r.data.get("force_reason")) for r in rows] == [
        ("oms.schema.updated", True, "HR migration, approved in CHG-12")
    ]
