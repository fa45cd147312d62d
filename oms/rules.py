"""The rules a protected branch holds its changes to, and how a proposal's review meets them.

A branch's rules hold only while it is protected: an unprotected branch takes any change from
anyone with the permission. A proposal records the rules it was validated under; until it is
revalidated it is held to the stricter of those and the target's current ones, so lowering a
rule does not quietly apply to proposals already open, while raising one does at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common import errors
from common.errors import quoted
from oms.compat import CompatibilityMode
from oms.store import BranchRecord

APPROVE = "APPROVE"
REQUEST_CHANGES = "REQUEST_CHANGES"
COMMENT = "COMMENT"

_STRICTNESS = {
    CompatibilityMode.NONE: 0,
    CompatibilityMode.BACKWARD: 1,
    CompatibilityMode.FORWARD: 1,
    CompatibilityMode.FULL: 2,
}


@dataclass(frozen=True)
class BranchRules:
    """What a merge into a branch must satisfy; the rules of no protection require nothing."""

    protected: bool = False
    compatibility_mode: str = CompatibilityMode.BACKWARD.value
    required_approvals: int = 0
    allow_self_approval: bool = True
    compatibility_exemptions: frozenset[str] = frozenset()
    """Rule ids whose findings never break this branch."""

    @classmethod
    def of(cls, branch: BranchRecord) -> BranchRules:
        """The rules ``branch`` holds now: its settings when protected, none otherwise."""
        exemptions = frozenset(branch.compatibility_exemptions)
        if not branch.protected:
            return cls(
                compatibility_mode=branch.compatibility_mode, compatibility_exemptions=exemptions
            )
        return cls(
            protected=True,
            compatibility_mode=branch.compatibility_mode,
            required_approvals=branch.required_approvals,
            allow_self_approval=branch.allow_self_approval,
            compatibility_exemptions=exemptions,
        )

    def stricter(self, other: BranchRules) -> BranchRules:
        """Each rule at the stricter of the two."""
        return BranchRules(
            protected=self.protected or other.protected,
            compatibility_mode=stricter_mode(self.compatibility_mode, other.compatibility_mode),
            required_approvals=max(self.required_approvals, other.required_approvals),
            allow_self_approval=self.allow_self_approval and other.allow_self_approval,
            compatibility_exemptions=self.compatibility_exemptions & other.compatibility_exemptions,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "protected": self.protected,
            "compatibility_mode": self.compatibility_mode,
            "required_approvals": self.required_approvals,
            "allow_self_approval": self.allow_self_approval,
            "compatibility_exemptions": sorted(self.compatibility_exemptions),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> BranchRules:
        return cls(
            protected=bool(value["protected"]),
            compatibility_mode=str(value["compatibility_mode"]),
            required_approvals=int(value["required_approvals"]),
            allow_self_approval=bool(value["allow_self_approval"]),
            # Absent from rules recorded before exemptions existed: none then.
            compatibility_exemptions=frozenset(value.get("compatibility_exemptions", ())),
        )


def stricter_mode(a: str, b: str) -> str:
    """The mode that refuses everything either refuses.

    BACKWARD and FORWARD together are FULL, and either one transitive makes the result so.
    """
    if a == b:
        return a
    first, second = CompatibilityMode(a), CompatibilityMode(b)
    one, other = first.direction, second.direction
    if one == other:
        direction = one
    elif _STRICTNESS[one] == _STRICTNESS[other]:
        direction = CompatibilityMode.FULL
    else:
        direction = max(one, other, key=_STRICTNESS.__getitem__)
    if (first.transitive or second.transitive) and direction is not CompatibilityMode.NONE:
        return f"{direction.value}_TRANSITIVE"
    return direction.value


@dataclass(frozen=True)
class Review:
    """A reviewer's verdict on the source head they saw; ``admin`` if they held ``*`` then."""

    reviewer: str
    verdict: str
    source_head: str
    admin: bool = False


def approvers(
    reviews: Iterable[Review], *, source_head: str, author: str, rules: BranchRules
) -> list[Review]:
    """The approvals that count: each reviewer's latest verdict, an approval of ``source_head``.

    A new commit on the source withdraws every earlier approval, a request for changes the
    reviewer's own; the author's counts only where the rules allow self-approval.
    """
    latest: dict[str, Review] = {}
    for review in reviews:
        if review.verdict in (APPROVE, REQUEST_CHANGES):
            latest[review.reviewer] = review
    return [
        r
        for r in latest.values()
        if r.verdict == APPROVE
        and r.source_head == source_head
        and (rules.allow_self_approval or r.reviewer != author)
    ]


def check_approvals(rules: BranchRules, approved: list[Review], *, target: str) -> None:
    """Refuse a merge short of the approvals ``rules`` require (``APPROVALS_REQUIRED``)."""
    if len(approved) < rules.required_approvals:
        raise errors.FailedPrecondition(
            f"merging into {quoted(target)} needs {rules.required_approvals} approval(s) of the "
            f"current source head, it has {len(approved)}",
            reason="APPROVALS_REQUIRED",
            metadata={
                "target": target,
                "required": str(rules.required_approvals),
                "approvals": str(len(approved)),
            },
        )


def second_admins(forcer: str, approved: list[Review]) -> tuple[str, ...]:
    """The administrators besides ``forcer`` who approved; refused when there is none.

    Forcing breaking changes through a proposal takes two people: the forcing administrator
    and another who approved the very head being merged (``SECOND_APPROVAL_REQUIRED``).
    """
    others = tuple(sorted(r.reviewer for r in approved if r.admin and r.reviewer != forcer))
    if not others:
        raise errors.FailedPrecondition(
            "forcing breaking changes needs the approval of an administrator other than "
            f"{quoted(forcer)} of the current source head",
            reason="SECOND_APPROVAL_REQUIRED",
            metadata={"forcer": forcer},
        )
    return others
