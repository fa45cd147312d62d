"""Proposals: asking to merge a source branch into a target, reviewed before it merges.

A proposal stores what people said (title, description, reviewers, its thread of comments
and reviews) and the rules it was validated under; everything that depends on the branches
(its diff, its validation, whether it is approved) is computed on read from their current
heads, so it can never be stale. Its merge goes through :meth:`OntologyService.merge`, which
holds it to the stricter of its validated rules and the target's current ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from common import errors, pages, times
from common.auth import Principal
from common.canonical import canonical_json
from common.errors import FieldViolation, quoted
from common.outbox import OutboxEvent
from common.permissions import Permission
from oms.compat import has_breaking
from oms.diff import ResourceChange, diff_snapshots
from oms.merge import Resolution
from oms.rules import APPROVE, COMMENT, REQUEST_CHANGES, BranchRules, Review, approvers
from oms.service import (
    Comparison,
    Force,
    MergeOutcome,
    MergeResult,
    MergeStrategy,
    OntologyService,
    ViaProposal,
    clamp_page_size,
)
from oms.store import CommitRecord, ProposalRecord, ProposalStore, ThreadEntry
from oms.tree import content_hash

OPEN, APPROVED, MERGED, CLOSED = "OPEN", "APPROVED", "MERGED", "CLOSED"
PROPOSAL_SETTINGS = ("title", "description", "reviewers")
MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_REVIEWERS = 20
MAX_DIFF = 1000
"""Changes a proposal shows; DiffRefs pages through the rest."""
LIST_SCAN_LIMIT = 2_000
"""Proposals one page of OPEN or APPROVED ones reads at most."""


@dataclass(frozen=True)
class Checked:
    """The proposal's changes against its target now: what GetProposal shows."""

    base: CommitRecord
    source_head: str
    target_head: str
    passed: bool
    comparison: Comparison
    changes: list[ResourceChange]
    more: bool
    """Whether more keys changed than :data:`MAX_DIFF` (``changes`` holds the first)."""


@dataclass(frozen=True)
class ProposalView:
    """A proposal as read now: its state, approvals and rules worked out from the branches."""

    record: ProposalRecord
    state: str
    approved_by: list[str]
    rules: BranchRules
    validated: BranchRules
    checked: Checked | None = None


class ProposalService:
    """The proposal use cases; the merge itself is the ontology's."""

    def __init__(self, ontology: OntologyService, store: ProposalStore) -> None:
        self.ontology = ontology
        self.store = store

    # -- reading ----------------------------------------------------------------------------

    def _view(self, record: ProposalRecord, *, check: bool = False) -> ProposalView:
        """The state (APPROVED when open with its approvals), and the check when asked."""
        validated = BranchRules.from_json(record.validated_rules)
        if record.state != OPEN:
            kept = list(record.merged_approvals)
            return ProposalView(record, record.state, kept, validated, validated)
        branches = self.ontology.store
        try:
            source, target = branches.branch(record.source), branches.branch(record.target)
        except errors.NotFound:
            # A branch deleted under an open proposal: nothing to approve or check until it
            # is recreated, and the proposal can still be read and closed.
            return ProposalView(record, OPEN, [], validated, validated)
        rules = BranchRules.of(target).stricter(validated)
        approved = approvers(
            _reviews(self.store.reviews(record.id)),
            source_head=source.head,
            author=record.author,
            rules=rules,
        )
        enough = len(approved) >= max(rules.required_approvals, 1)
        checked = None
        if check:
            head = branches.commit(source.head)
            base = self.ontology.departure(head, target)
            comparison = self.ontology.compare(base, head, rules)
            checked = Checked(
                base=base,
                source_head=source.head,
                target_head=target.head,
                passed=not has_breaking(comparison.findings),
                comparison=comparison,
                changes=diff_snapshots(comparison.old, comparison.new, comparison.keys[:MAX_DIFF]),
                more=len(comparison.keys) > MAX_DIFF,
            )
        return ProposalView(
            record,
            APPROVED if enough else OPEN,
            sorted(r.reviewer for r in approved),
            rules,
            validated,
            checked,
        )

    def get(self, proposal_id: str) -> ProposalView:
        return self._view(self.store.proposal(proposal_id), check=True)

    def list_proposals(
        self, *, state: str, target: str, page_size: int, page_token: str
    ) -> pages.Page[ProposalView]:
        """Newest first.

        OPEN and APPROVED are told apart on read, so a page of one of them may look further
        than its size; past :data:`LIST_SCAN_LIMIT` proposals it comes back short, with a
        token to go on, as a filtered history does.
        """
        size = clamp_page_size(page_size)
        query = {"list": "proposals", "state": state, "target": target}
        before = str(pages.decode(page_token, query=query).get("before", "")) if page_token else ""
        stored = [OPEN] if state in (OPEN, APPROVED) else [state] if state else []
        found: list[ProposalView] = []
        scanned = 0
        while len(found) <= size:
            batch = self.store.proposals(
                states=stored, target=target, before=before, limit=size + 1
            )
            found.extend(v for v in map(self._view, batch) if not state or v.state == state)
            if len(batch) <= size:
                break
            before, scanned = batch[-1].id, scanned + len(batch)
            if scanned >= LIST_SCAN_LIMIT and len(found) <= size:
                return pages.Page(
                    found,
                    pages.encode({"before": before}, query=query),
                    lambda count: pages.encode({"before": found[count - 1].record.id}, query=query),
                )
        return pages.cut(
            found, size, lambda last: pages.encode({"before": last.record.id}, query=query)
        )

    def comments(
        self, proposal_id: str, *, page_size: int, page_token: str
    ) -> pages.Page[ThreadEntry]:
        self.store.proposal(proposal_id)
        size = clamp_page_size(page_size)
        query = {"comments": proposal_id}
        after = pages.decode(page_token, query=query).get("after", 0) if page_token else 0
        if not isinstance(after, int):
            raise pages.refuse("does not fit this list")
        found = self.store.entries(proposal_id, after=after, limit=size + 1)
        return pages.cut(
            found, size, lambda last: pages.encode({"after": last.number}, query=query)
        )

    # -- opening and editing ----------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        *,
        title: str,
        description: str,
        source: str,
        target: str,
        reviewers: Sequence[str],
    ) -> ProposalView:
        violations = _text_violations({"title": title, "description": description})
        violations += _reviewer_violations(reviewers, "proposal.reviewers")
        for name, value in (("proposal.source", source), ("proposal.target", target)):
            if not value:
                violations.append(FieldViolation(name, "required", "REQUIRED"))
        if source and source == target:
            violations.append(
                FieldViolation("proposal.target", "must differ from the source", "INVALID_VALUE")
            )
        if violations:
            raise errors.invalid(violations)
        branches = self.ontology.store
        source_head = branches.branch(source).head
        rules = BranchRules.of(branches.branch(target))
        now = times.now()
        record = _with_etag(
            ProposalRecord(
                id=f"{now:016x}{os.urandom(4).hex()}",
                title=title.strip(),
                description=description,
                author=principal.username,
                source=source,
                target=target,
                reviewers=tuple(reviewers),
                state=OPEN,
                validated_rules=rules.to_json(),
                created_ns=now,
                updated_ns=now,
                etag="",
            )
        )
        event = _event(
            "opened",
            principal,
            record,
            source_head=source_head,
            reviewers=list(record.reviewers),
            rules=rules.to_json(),
        )
        return self._view(self.store.create_proposal(record, event))

    def update(
        self,
        principal: Principal,
        proposal_id: str,
        mask: Sequence[str],
        values: Mapping[str, Any],
        *,
        etag: str,
    ) -> ProposalView:
        """Change title, description or reviewers: the author's or an administrator's call."""
        violations = [
            FieldViolation("update_mask", f"cannot update {quoted(p)}", "INVALID_VALUE")
            for p in mask
            if p not in PROPOSAL_SETTINGS
        ]
        if not mask:
            violations.append(FieldViolation("update_mask", "name the fields to update"))
        requested = [p for p in PROPOSAL_SETTINGS if p in mask]
        texts: dict[str, str] = {p: str(values[p]) for p in ("title", "description") if p in mask}
        violations += _text_violations(texts)
        if "reviewers" in requested:
            violations += _reviewer_violations(values["reviewers"], "proposal.reviewers")
        if violations:
            raise errors.invalid(violations)
        current = self._open(proposal_id)
        _author_or_admin(principal, current, "update")
        changes: dict[str, Any] = {p: values[p] for p in requested}
        if "title" in changes:
            changes["title"] = str(changes["title"]).strip()
        if "reviewers" in changes:
            changes["reviewers"] = tuple(changes["reviewers"])
        updated = _with_etag(replace(current, **changes, updated_ns=times.now()))
        event = _event(
            "updated",
            principal,
            current,
            fields=requested,
            before={p: _json(getattr(current, p)) for p in requested},
            after={p: _json(getattr(updated, p)) for p in requested},
        )
        self.store.update_proposal(proposal_id, etag or current.etag, updated, event)
        return self._view(updated)

    def close(self, principal: Principal, proposal_id: str) -> ProposalView:
        current = self._open(proposal_id)
        _author_or_admin(principal, current, "close")
        closed = _with_etag(replace(current, state=CLOSED, updated_ns=times.now()))
        self.store.update_proposal(
            proposal_id, current.etag, closed, _event("closed", principal, current)
        )
        return self._view(closed)

    def revalidate(self, principal: Principal, proposal_id: str) -> ProposalView:
        """Hold the proposal to the target's rules as they are now, lowered ones included."""
        current = self._open(proposal_id)
        rules = BranchRules.of(self.ontology.store.branch(current.target))
        updated = _with_etag(
            replace(current, validated_rules=rules.to_json(), updated_ns=times.now())
        )
        event = _event(
            "revalidated",
            principal,
            current,
            before=dict(current.validated_rules),
            after=rules.to_json(),
        )
        self.store.update_proposal(proposal_id, current.etag, updated, event)
        return self._view(updated)

    # -- the thread ---------------------------------------------------------------------------

    def comment(self, principal: Principal, proposal_id: str, body: str) -> ThreadEntry:
        violations = _text_violations({"body": body}, prefix="")
        if not body.strip():
            violations.append(FieldViolation("body", "required", "REQUIRED"))
        if violations:
            raise errors.invalid(violations)
        current = self.store.proposal(proposal_id)
        return self._add(principal, current, COMMENT, body, "commented", source_gone_ok=True)

    def review(
        self,
        principal: Principal,
        proposal_id: str,
        verdict: str,
        comment: str,
        *,
        source_head: str = "",
    ) -> ProposalView:
        """Approve the current source head, or request changes (which needs a comment).

        With ``source_head``, only if the source is still there.
        """
        violations = _text_violations({"comment": comment}, prefix="")
        if verdict not in (APPROVE, REQUEST_CHANGES):
            violations.append(FieldViolation("verdict", "APPROVE or REQUEST_CHANGES", "REQUIRED"))
        elif verdict == REQUEST_CHANGES and not comment.strip():
            violations.append(FieldViolation("comment", "say what should change", "REQUIRED"))
        if violations:
            raise errors.invalid(violations)
        current = self._open(proposal_id)
        if verdict == APPROVE and principal.username == current.author:
            rules = self._view(current).rules
            if not rules.allow_self_approval:
                raise errors.PermissionDenied(
                    f"the author cannot approve their own proposal into {quoted(current.target)}",
                    reason="SELF_APPROVAL_NOT_ALLOWED",
                    metadata={"proposal": proposal_id, "target": current.target},
                )
        kind = "approved" if verdict == APPROVE else "changes_requested"
        self._add(principal, current, verdict, comment, kind, expected_head=source_head)
        return self._view(current)

    def _add(
        self,
        principal: Principal,
        proposal: ProposalRecord,
        kind: str,
        body: str,
        event: str,
        *,
        expected_head: str = "",
        source_gone_ok: bool = False,
    ) -> ThreadEntry:
        """Append to the thread, with the source head it was written on.

        A comment may follow a merged proposal whose source branch is gone (its head is then
        empty); a review needs the source.
        """
        try:
            source_head = self.ontology.store.branch(proposal.source).head
        except errors.NotFound:
            if not source_gone_ok:
                raise
            source_head = ""
        if expected_head and expected_head != source_head:
            raise errors.Aborted(
                f"source branch {quoted(proposal.source)} is at {source_head}, not {expected_head}",
                reason="SOURCE_HEAD_MOVED",
                metadata={"proposal": proposal.id, "source_head": source_head},
            )
        entry = ThreadEntry(
            kind=kind,
            author=principal.username,
            body=body,
            source_head=source_head,
            admin=principal.has(Permission.ALL),
            time_ns=times.now(),
        )
        return self.store.add_entry(
            proposal.id,
            entry,
            _event(event, principal, proposal, source_head=source_head, characters=len(body)),
        )

    # -- merging ----------------------------------------------------------------------------

    def merge(
        self,
        principal: Principal,
        proposal_id: str,
        *,
        strategy: MergeStrategy,
        message: str,
        force: Force,
        resolutions: Sequence[Resolution] = (),
    ) -> tuple[ProposalView, MergeResult]:
        """Merge through the branch merge, conflicts settled by ``resolutions``.

        The proposal is marked merged once the branch merge has.

        The two are separate transactions: a proposal whose changes merged but which is not yet
        marked (a crash between them) merges again as UP_TO_DATE and is marked then. Of calls
        racing to merge one proposal, one marks it and records the merge; the others are told
        it is not open (``PROPOSAL_NOT_OPEN``), or, before it is marked, that the target moved
        (the racing merge moved it). A proposal closed while its merge ran is marked merged
        all the same: its changes are in the target.
        """
        current = self._open(proposal_id)
        via = ViaProposal(
            proposal=current.id,
            author=current.author,
            validated=BranchRules.from_json(current.validated_rules),
            reviews=tuple(_reviews(self.store.reviews(current.id))),
        )
        try:
            result = self.ontology.merge(
                principal,
                current.source,
                target=current.target,
                strategy=strategy,
                message=message or current.title,
                force=force,
                via=via,
                resolutions=resolutions,
            )
        except errors.Aborted:
            self._open(proposal_id)  # a racing call merged and marked it: say so
            raise
        merged = _with_etag(
            replace(
                current,
                state=MERGED,
                merge_commit=result.commit.id,
                merged_approvals=result.approved_by,
                updated_ns=times.now(),
            )
        )
        event = _event(
            "merged",
            principal,
            current,
            commit=result.commit.id,
            outcome=result.outcome.value,
            approved_by=list(result.approved_by),
            # Only a commit this merge wrote says whether it forced; an up-to-date merge or a
            # fast-forward (which a forced merge never is) leaves an older commit at the head.
            forced=result.outcome in (MergeOutcome.MERGE_COMMIT, MergeOutcome.SQUASH)
            and result.commit.forced,
        )
        try:
            self.store.update_proposal(proposal_id, None, merged, event, unless_state=MERGED)
        except errors.Aborted:  # a racing call marked it first: one merge, one record
            self._open(proposal_id)
            raise
        return self._view(merged), result

    def _open(self, proposal_id: str) -> ProposalRecord:
        current = self.store.proposal(proposal_id)
        if current.state != OPEN:
            raise errors.FailedPrecondition(
                f"proposal {quoted(proposal_id)} is {current.state.lower()}",
                reason="PROPOSAL_NOT_OPEN",
                metadata={"proposal": proposal_id, "state": current.state},
            )
        return current


def _reviews(entries: Sequence[ThreadEntry]) -> list[Review]:
    return [Review(e.author, e.kind, e.source_head, e.admin) for e in entries]


def _with_etag(record: ProposalRecord) -> ProposalRecord:
    """The record with the etag of its content: any change gives another."""
    content = {
        "id": record.id,
        "title": record.title,
        "description": record.description,
        "reviewers": list(record.reviewers),
        "state": record.state,
        "validated_rules": dict(record.validated_rules),
        "updated_ns": record.updated_ns,
    }
    return replace(record, etag=content_hash(canonical_json(content))[:32])


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _event(kind: str, principal: Principal, proposal: ProposalRecord, **data: Any) -> OutboxEvent:
    return OutboxEvent(
        type=f"oms.proposal.{kind}",
        subject=f"proposals/{proposal.id}",
        actor=principal.username,
        data={
            "proposal": proposal.id,
            "source": proposal.source,
            "target": proposal.target,
            **data,
        },
    )


def _text_violations(texts: Mapping[str, str], prefix: str = "proposal.") -> list[FieldViolation]:
    violations = []
    for name, text in texts.items():
        limit = MAX_TITLE if name == "title" else MAX_TEXT
        if name == "title" and not text.strip():
            violations.append(FieldViolation(f"{prefix}{name}", "required", "REQUIRED"))
        elif len(text) > limit:
            violations.append(
                FieldViolation(f"{prefix}{name}", f"at most {limit} characters", "TOO_LONG")
            )
    return violations


def _reviewer_violations(reviewers: Sequence[str], field: str) -> list[FieldViolation]:
    violations = []
    if len(reviewers) > MAX_REVIEWERS:
        violations.append(FieldViolation(field, f"at most {MAX_REVIEWERS}", "TOO_MANY"))
    seen: set[str] = set()
    for i, name in enumerate(reviewers):
        if not name or len(name) > 256:
            violations.append(FieldViolation(f"{field}[{i}]", "a username", "INVALID_VALUE"))
        elif name in seen:
            violations.append(FieldViolation(f"{field}[{i}]", f"{quoted(name)} twice", "DUPLICATE"))
        seen.add(name)
    return violations


def _author_or_admin(principal: Principal, proposal: ProposalRecord, action: str) -> None:
    if principal.username != proposal.author and not principal.has(Permission.ALL):
        raise errors.PermissionDenied(
            f"only the author or an administrator can {action} proposal {quoted(proposal.id)}",
            reason="NOT_PROPOSAL_AUTHOR",
            metadata={"proposal": proposal.id},
        )
