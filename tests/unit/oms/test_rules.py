"""The branch rules on their own: which is stricter, which approvals count, the two-person rule."""

from __future__ import annotations

import pytest

from common import errors
from oms.rules import (
    APPROVE,
    COMMENT,
    REQUEST_CHANGES,
    BranchRules,
    Review,
    approvers,
    check_approvals,
    second_admins,
    stricter_mode,
)
from oms.store import BranchRecord

MAIN_RULES = BranchRules(
    protected=True, compatibility_mode="BACKWARD", required_approvals=1, allow_self_approval=False
)


def _branch(*, protected: bool = True) -> BranchRecord:
    return BranchRecord(
        name="b",
        head="h",
        base_branch="main",
        protected=protected,
        compatibility_mode="FULL",
        creator="c",
        created_ns=0,
        required_approvals=2,
        allow_self_approval=False,
    )


def test_an_unprotected_branch_holds_no_rules() -> None:
    assert BranchRules.of(_branch(protected=False)) == BranchRules(compatibility_mode="FULL")
    assert BranchRules.of(_branch()) == BranchRules(True, "FULL", 2, False)


@pytest.mark.parametrize(
    ("a", "b", "stricter"),
    [
        ("NONE", "BACKWARD", "BACKWARD"),
        ("FORWARD", "NONE", "FORWARD"),
        ("BACKWARD", "FORWARD", "FULL"),
        ("FULL", "BACKWARD", "FULL"),
        ("NONE", "NONE", "NONE"),
    ],
)
def test_the_stricter_mode_refuses_what_either_refuses(a: str, b: str, stricter: str) -> None:
    assert stricter_mode(a, b) == stricter_mode(b, a) == stricter


def test_lowered_rules_do_not_loosen_recorded_ones() -> None:
    lowered = BranchRules(protected=True, compatibility_mode="NONE", required_approvals=0)
    assert lowered.stricter(MAIN_RULES) == MAIN_RULES
    raised = BranchRules(True, "FULL", 3, True)
    assert MAIN_RULES.stricter(raised) == BranchRules(True, "FULL", 3, False)
    assert BranchRules.from_json(MAIN_RULES.to_json()) == MAIN_RULES


def test_only_latest_approvals_of_the_current_head_count() -> None:
    reviews = [
        Review("bob", APPROVE, "old"),
        Review("carol", APPROVE, "new"),
        Review("dave", APPROVE, "new"),
        Review("dave", REQUEST_CHANGES, "new"),
        Review("erin", REQUEST_CHANGES, "new"),
        Review("erin", APPROVE, "new"),
        Review("frank", APPROVE, "new"),
        Review("frank", COMMENT, "newer"),
    ]
    counted = approvers(reviews, source_head="new", author="alice", rules=MAIN_RULES)
    assert sorted(r.reviewer for r in counted) == ["carol", "erin", "frank"]


def test_the_authors_approval_counts_only_where_self_approval_is_allowed() -> None:
    reviews = [Review("alice", APPROVE, "h")]
    assert approvers(reviews, source_head="h", author="alice", rules=MAIN_RULES) == []
    allowed = BranchRules(True, "BACKWARD", 1, True)
    assert approvers(reviews, source_head="h", author="alice", rules=allowed) == reviews


def test_too_few_approvals_are_refused() -> None:
    with pytest.raises(errors.FailedPrecondition) as refused:
        check_approvals(MAIN_RULES, [], target="main")
    assert refused.value.reason == "APPROVALS_REQUIRED"
    check_approvals(MAIN_RULES, [Review("bob", APPROVE, "h")], target="main")


def test_forcing_takes_another_admins_approval() -> None:
    forcer_only = [Review("admin", APPROVE, "h", admin=True), Review("bob", APPROVE, "h")]
    with pytest.raises(errors.FailedPrecondition) as refused:
        second_admins("admin", forcer_only)
    assert refused.value.reason == "SECOND_APPROVAL_REQUIRED"
    both = [*forcer_only, Review("carol", APPROVE, "h", admin=True)]
    assert second_admins("admin", both) == ("carol",)


@pytest.mark.parametrize(
    ("a", "b", "stricter"),
    [
        ("BACKWARD", "BACKWARD_TRANSITIVE", "BACKWARD_TRANSITIVE"),
        ("FORWARD_TRANSITIVE", "BACKWARD", "FULL_TRANSITIVE"),
        ("NONE", "FULL_TRANSITIVE", "FULL_TRANSITIVE"),
        ("FULL", "FORWARD", "FULL"),
    ],
)
def test_the_stricter_mode_keeps_either_transitive(a: str, b: str, stricter: str) -> None:
    assert stricter_mode(a, b) == stricter_mode(b, a) == stricter


def test_only_the_exemptions_both_rules_grant_hold() -> None:
    recorded = BranchRules(compatibility_exemptions=frozenset({"PROPERTY_DELETED", "A"}))
    current = BranchRules(compatibility_exemptions=frozenset({"PROPERTY_DELETED", "B"}))
    assert recorded.stricter(current).compatibility_exemptions == {"PROPERTY_DELETED"}
    old = {k: v for k, v in recorded.to_json().items() if k != "compatibility_exemptions"}
    assert BranchRules.from_json(old).compatibility_exemptions == frozenset()
