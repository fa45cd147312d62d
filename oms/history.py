"""Working with history: tags, rebasing a branch, reverting a commit.

Rebase and revert are three-way merges (:func:`oms.merge.merge_snapshots`) with other sides,
so they conflict, take resolutions and are checked whole exactly as a merge is:

- rebasing ``branch`` onto ``onto`` merges the branch (theirs) into the head of ``onto``
  (ours) from their merge base, and writes the result as **one** commit whose only parent is
  that head. One commit rather than one per replayed commit: the resolutions name conflicts
  by resource and path once, as a merge's do, instead of once per step; the result is checked
  whole once, and no intermediate state (valid or not on the new base) is ever written; and
  the cost follows the size of the branch's change, not the number of its commits.
- reverting commit ``C`` on a branch merges ``C``'s first parent (theirs) into the branch head
  (ours) from ``C`` itself (the base): what ``C`` changed goes back, unless a later commit
  changed the same field too, which conflicts.

Only the keys the replayed side changed since the base are read, so both cost what the
change does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from common import errors, pages, times
from common.auth import Principal
from common.errors import FieldViolation, quoted
from common.outbox import OutboxEvent
from oms.checks import long_texts
from oms.merge import Resolution, check_resolutions, merge_snapshots
from oms.model import Overlay, Resource
from oms.refs import Refs
from oms.rules import BranchRules
from oms.service import (
    MERGE_REFUSALS,
    Force,
    OntologyService,
    allow_breaking,
    clamp_page_size,
    head_moved,
    nothing_to_resolve,
    ref_name_violations,
    refuse_direct,
)
from oms.store import CommitRecord, NewCommit, OntologyStore, TagRecord


class RebaseOutcome(StrEnum):
    """What a rebase did, as the caller and the ``oms.branch.rebased`` event report it."""

    UP_TO_DATE = "UP_TO_DATE"
    FAST_FORWARD = "FAST_FORWARD"
    REBASED = "REBASED"


@dataclass(frozen=True)
class RebaseResult:
    """What a rebase did, the branch's head after it, and the head it was rebased onto."""

    outcome: RebaseOutcome
    commit: CommitRecord
    onto: CommitRecord


class HistoryService:
    """Tags, rebase and revert on the same store and ref resolver as :class:`OntologyService`."""

    def __init__(self, ontology: OntologyService) -> None:
        self.ontology = ontology
        self.store: OntologyStore = ontology.store
        self.refs: Refs = ontology.refs

    # -- tags ---------------------------------------------------------------------------

    def create_tag(
        self, principal: Principal, name: str, *, target: str, message: str
    ) -> tuple[TagRecord, CommitRecord]:
        violations = ref_name_violations(name) + long_texts(message=message)
        if not target:
            violations.append(FieldViolation("target", "required", "REQUIRED"))
        if violations:
            raise errors.invalid(violations)
        commit = self.refs.resolve(target, field="target")
        try:
            self.store.branch(name)
        except errors.NotFound:
            pass
        else:
            # A branch is resolved before a tag of the same name, which it would hide.
            raise errors.AlreadyExists(
                f"{quoted(name)} is a branch; a tag of that name could never be read",
                reason="BRANCH_EXISTS",
                metadata={"branch": name},
            )
        tag = TagRecord(name, commit.id, message, principal.username, times.now())
        created = self.store.create_tag(
            tag,
            OutboxEvent(
                type="oms.tag.created",
                subject=f"tags/{name}",
                actor=principal.username,
                data={"tag": name, "target": target, "commit": commit.id, "message": message},
            ),
        )
        return created, commit

    def get_tag(self, name: str) -> tuple[TagRecord, CommitRecord]:
        tag = self.store.tag(name)
        return tag, self.store.commit(tag.commit)

    def list_tags(self, *, page_size: int, page_token: str) -> pages.Page[TagRecord]:
        size = clamp_page_size(page_size)
        query = {"list": "tags"}
        found = self.store.tags(after=pages.after(page_token, query=query), limit=size + 1)
        return pages.cut_after(found, size, lambda tag: tag.name, query=query)

    def delete_tag(self, principal: Principal, name: str) -> None:
        tag = self.store.tag(name)
        self.store.delete_tag(
            name,
            OutboxEvent(
                type="oms.tag.deleted",
                subject=f"tags/{name}",
                actor=principal.username,
                data={"tag": name, "commit": tag.commit},
            ),
        )

    # -- rebase -------------------------------------------------------------------------

    def rebase(
        self,
        principal: Principal,
        branch: str,
        *,
        onto: str,
        message: str,
        resolutions: Sequence[Resolution],
        expected_head: str,
    ) -> RebaseResult:
        """Replay ``branch``'s changes since its merge base with ``onto`` on that head.

        Refused for what it would write like a merge (recorded as ``oms.branch.rebase_refused``).
        A protected branch is never rebased: rebasing rewrites the history protection keeps.
        """
        check_resolutions(resolutions)
        if found := long_texts(message=message):
            raise errors.invalid(found)
        src = self.store.branch(branch)
        onto = onto or src.base_branch
        if src.protected:
            raise errors.FailedPrecondition(
                f"branch {quoted(branch)} is protected; rebasing would rewrite its history",
                reason="BRANCH_PROTECTED",
                metadata={"branch": branch},
            )
        if onto == branch:
            raise errors.invalid([FieldViolation("onto", "cannot rebase a branch onto itself")])
        if expected_head and expected_head != src.head:
            raise head_moved(branch, expected_head, src.head)
        dst = self.store.branch(onto)
        try:
            return self._rebase(principal, src.name, src.head, dst.head, onto, message, resolutions)
        except errors.FailedPrecondition as refusal:
            if refusal.reason in MERGE_REFUSALS:
                self.store.record_events(
                    [
                        _refused(
                            "oms.branch.rebase_refused",
                            principal,
                            branch,
                            refusal,
                            {"branch": branch, "onto": onto},
                        )
                    ]
                )
            raise

    def _rebase(
        self,
        principal: Principal,
        branch: str,
        head: str,
        onto_head: str,
        onto: str,
        message: str,
        resolutions: Sequence[Resolution],
    ) -> RebaseResult:
        base_id = self.store.merge_base(head, onto_head)
        if base_id is None:
            raise errors.FailedPrecondition(
                f"{branch} and {onto} share no history", reason="NO_MERGE_BASE"
            )
        what = f"rebasing {branch} onto {onto}"
        metadata = {"branch": branch, "onto": onto, "merge_base": base_id}
        onto_commit = self.store.commit(onto_head)
        if base_id == onto_head:
            nothing_to_resolve(resolutions, what, metadata)
            return RebaseResult(RebaseOutcome.UP_TO_DATE, self.store.commit(head), onto_commit)
        changes: Mapping[str, Resource | None] = {}
        if base_id != head:
            base, ours, theirs = (self.store.snapshot(c) for c in (base_id, onto_head, head))
            result = merge_snapshots(
                base, ours, theirs, self.store.changed_keys(base_id, head), resolutions
            )
            if not result.clean:
                result.refuse(what, metadata)
            changes = result.changes
        else:
            nothing_to_resolve(resolutions, what, metadata)
        outcome = RebaseOutcome.REBASED if changes else RebaseOutcome.FAST_FORWARD

        def events(commit: CommitRecord) -> list[OutboxEvent]:
            return [
                OutboxEvent(
                    type="oms.branch.rebased",
                    subject=f"branches/{branch}",
                    actor=principal.username,
                    data={
                        "branch": branch,
                        "onto": onto,
                        "onto_head": onto_head,
                        "previous_head": head,
                        "outcome": outcome.value,
                        "commit": commit.id,
                        "changes": len(changes),
                        "resolutions": len(resolutions),
                    },
                )
            ]

        if outcome is RebaseOutcome.FAST_FORWARD:
            commit = self.store.move_branch(branch, head, onto_head, events)
        else:
            commit = self.store.write_commit(
                branch,
                head,
                NewCommit(
                    parents=(onto_head,),
                    changes=changes,
                    author=principal.username,
                    message=message
                    or f"Rebase {branch} onto {onto}\n\nReplays {base_id[:12]}..{head[:12]} "
                    f"on {onto_head[:12]}.",
                ),
                events,
            )
        return RebaseResult(outcome, commit, onto_commit)

    # -- revert -------------------------------------------------------------------------

    def revert(
        self,
        principal: Principal,
        branch: str,
        *,
        commit: str,
        message: str,
        resolutions: Sequence[Resolution],
        force: Force,
    ) -> CommitRecord:
        """A commit on ``branch`` undoing ``commit`` (relative to its first parent).

        Refused for what it would write like a merge (recorded as ``oms.commit.revert_refused``);
        on a protected branch, breaking changes need an administrator's force as any write.
        """
        check_resolutions(resolutions)
        if found := long_texts(message=message, force_reason=force.reason):
            raise errors.invalid(found)
        head = self.store.branch(branch)
        target = self.refs.resolve(commit, field="commit")
        if not target.parents:
            raise errors.invalid(
                [FieldViolation("commit", "the first commit has no parent to go back to")]
            )
        if self.store.merge_base(target.id, head.head) != target.id:
            raise errors.FailedPrecondition(
                f"commit {target.id[:12]} is not on branch {quoted(branch)}",
                reason="COMMIT_NOT_ON_BRANCH",
                metadata={"branch": branch, "commit": target.id},
            )
        parent = target.parents[0]
        what = f"reverting {target.id[:12]} on {branch}"
        metadata = {"branch": branch, "commit": target.id}
        try:
            refuse_direct(head, "a revert")
            base, ours, theirs = (self.store.snapshot(c) for c in (target.id, head.head, parent))
            result = merge_snapshots(
                base, ours, theirs, self.store.changed_keys(parent, target.id), resolutions
            )
            if not result.clean:
                result.refuse(what, metadata)
            if not result.changes:
                raise errors.FailedPrecondition(
                    f"{target.id[:12]} is already undone on {quoted(branch)}",
                    reason="NOTHING_TO_REVERT",
                    metadata=metadata,
                )
            forced = False
            if head.protected:
                findings = self.ontology.findings(
                    ours,
                    Overlay(ours, result.changes),
                    result.changes,
                    rules=BranchRules.of(head),
                    lineage=head.head,
                )
                forced = allow_breaking(
                    principal, head.name, head.compatibility_mode, findings, force
                )
        except errors.FailedPrecondition as refusal:
            if refusal.reason in MERGE_REFUSALS:
                event = _refused("oms.commit.revert_refused", principal, branch, refusal, metadata)
                self.store.record_events([event])
            raise

        def events(written: CommitRecord) -> list[OutboxEvent]:
            return [
                OutboxEvent(
                    type="oms.commit.reverted",
                    subject=f"branches/{branch}",
                    actor=principal.username,
                    data={
                        "branch": branch,
                        "reverted": target.id,
                        "commit": written.id,
                        "changes": len(result.changes),
                        "resolutions": len(resolutions),
                        "forced": forced,
                        "force_reason": force.reason if forced else "",
                    },
                )
            ]

        first_line = target.message.splitlines()[0] if target.message else ""
        return self.store.write_commit(
            branch,
            head.head,
            NewCommit(
                parents=(head.head,),
                changes=result.changes,
                author=principal.username,
                message=message or f'Revert {target.id[:12]} "{first_line}"',
                forced=forced,
                force_reason=force.reason if forced else "",
            ),
            events,
        )


def _refused(
    event_type: str,
    principal: Principal,
    branch: str,
    refusal: errors.FailedPrecondition,
    data: dict[str, str],
) -> OutboxEvent:
    return OutboxEvent(
        type=event_type,
        subject=f"branches/{branch}",
        actor=principal.username,
        data={
            **data,
            "reason": refusal.reason,
            "problems": len(refusal.details) + len(refusal.violations),
        },
    )
