"""A protected branch's rules over a real server: who may change them, why, and what they refuse."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from oms.v1 import branch_service_pb2 as bs
from oms.v1 import history_pb2 as h
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import reason, violated_fields
from tests.support.oms import object_type
from tests.support.outbox import last_seq, outbox_rows


def _update(oms, branch: h.Branch, *paths: str, reason: str = "", metadata=None):
    return oms.branches.UpdateBranch(
        bs.UpdateBranchRequest(
            branch=branch, update_mask=field_mask_pb2.FieldMask(paths=paths), reason=reason
        ),
        metadata=metadata or oms.admin,
        timeout=10,
    )


def test_main_asks_one_approval_by_another_and_takes_direct_writes_until_told(oms):
    main = oms.branches.GetBranch(bs.GetBranchRequest(name="main"), metadata=oms.admin)
    assert (main.protected, main.requires_proposal) == (True, False)
    assert (main.required_approvals, main.allow_self_approval) == (1, False)
    feature = oms.branch("feature")
    assert (feature.requires_proposal, feature.required_approvals) == (False, 0)
    assert feature.allow_self_approval


def test_a_protected_branch_rule_changes_only_with_a_reason_and_is_recorded(oms, oms_settings):
    lowering = h.Branch(name="main", compatibility_mode=h.COMPATIBILITY_MODE_NONE)
    with pytest.raises(grpc.RpcError) as no_reason:
        _update(oms, lowering, "compatibility_mode")
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(no_reason.value) == ["reason"]
    before = last_seq(oms_settings.database_url)
    _update(oms, lowering, "compatibility_mode", reason="migrating the HR model")
    (row,) = outbox_rows(oms_settings.database_url, after=before)
    assert (row.type, row.subject, row.actor) == (
        "oms.branch.settings_changed",
        "branches/main",
        "admin",
    )
    assert row.data["before"] == {"compatibility_mode": "BACKWARD"}
    assert row.data["after"] == {"compatibility_mode": "NONE"}
    assert row.data["reason"] == "migrating the HR model"


def test_required_approvals_are_bounded(oms):
    with pytest.raises(grpc.RpcError) as refused:
        _update(
            oms,
            h.Branch(name="main", required_approvals=-1),
            "required_approvals",
            reason="r",
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == ["branch.required_approvals"]


def test_only_an_admin_changes_a_protected_branch_rule(oms):
    with pytest.raises(grpc.RpcError) as denied:
        _update(
            oms,
            h.Branch(name="main", required_approvals=0),
            "required_approvals",
            reason="faster",
            metadata=oms.metadata(("branch:create",)),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(denied.value) == "ADMIN_REQUIRED"


def test_a_branch_requiring_proposals_refuses_writes_and_merges(oms, oms_settings):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    oms.require_proposals()
    before = last_seq(oms_settings.database_url)
    with pytest.raises(grpc.RpcError) as write:
        oms.create("main", object_type("Company"))
    with pytest.raises(grpc.RpcError) as delete:
        oms.schema.CommitChanges(
            ss.CommitChangesRequest(
                branch="main",
                message="m",
                changes=[ss.Change(upsert={"object_type": object_type("X")})],
            ),
            metadata=oms.admin,
        )
    with pytest.raises(grpc.RpcError) as merge:
        oms.merge("feature", target="main")
    for refused in (write, delete, merge):
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "BRANCH_REQUIRES_PROPOSAL"
    assert oms.names("main") == []
    rows = outbox_rows(oms_settings.database_url, after=before)
    assert [(r.type, r.data["reason"]) for r in rows] == [
        ("oms.commit.refused", "BRANCH_REQUIRES_PROPOSAL"),
        ("oms.commit.refused", "BRANCH_REQUIRES_PROPOSAL"),
        ("oms.branch.merge_refused", "BRANCH_REQUIRES_PROPOSAL"),
    ]
