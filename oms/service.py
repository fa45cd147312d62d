"""The OMS use cases: resource writes as commits, branches, history, diff, merge, validation.

Domain rules come from :mod:`oms.checks`, :mod:`oms.diff`, :mod:`oms.merge` and
:mod:`oms.compat`; storage from an :class:`oms.store.OntologyStore`. Each write reads a
snapshot, checks the result, and asks the store to commit it only if the branch head has not
moved meanwhile, so no check ever passes against a state that is not the one written onto.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from common import errors, pages, times
from common.auth import Principal
from common.canonical import canonical_json
from common.errors import FieldViolation, quoted
from common.outbox import OutboxEvent
from common.permissions import Permission
from oms.checks import check_changes, check_delete, check_resource, long_texts, outsized
from oms.compat import (
    RULES,
    CompatibilityMode,
    Finding,
    Rule,
    Severity,
    check_compatibility,
    exempt,
    has_breaking,
)
from oms.diff import ResourceChange, diff_snapshots
from oms.merge import MergedSnapshots, Resolution, check_resolutions, merge_snapshots
from oms.model import (
    FIELDS,
    OBJECT_TYPES,
    SINGULAR,
    Ontology,
    Overlay,
    Resource,
    normalize,
    resource_key,
    split_key,
)
from oms.objects import (
    Affected,
    DataChange,
    TypeRules,
    check_data,
    data_event,
    is_data_key,
    is_well_formed,
    object_key,
    pk_text,
    schema_data_violations,
    schema_part,
)
from oms.refs import Refs
from oms.rules import BranchRules, Review, approvers, check_approvals, second_admins
from oms.store import (
    BRANCH_SETTINGS,
    MAIN,
    BranchRecord,
    BranchSetting,
    CommitChanges,
    CommitRecord,
    EventsFor,
    NewCommit,
    OntologyStore,
    Snapshot,
    TagRecord,
)
from oms.tree import resource_etag

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
COMMIT_ID = re.compile(r"[0-9a-f]{64}")
MAX_REQUIRED_APPROVALS = 10
MAX_RELEASES = 100
"""The newest released versions (tags on a branch's history) a transitive mode checks."""
MAX_TAGS_SCANNED = 10_000
INLINE_CHANGES = 100
"""The changes a commit lists inline; a bigger one is read whole through DiffRefs."""


class MergeStrategy(StrEnum):
    """How a merge records the branch's changes on the target.

    ``MERGE_COMMIT`` keeps the branch's commits (fast-forward when the target is behind, else a
    commit with both heads as parents); ``SQUASH`` writes one commit on top of the target head.
    """

    MERGE_COMMIT = "MERGE_COMMIT"
    SQUASH = "SQUASH"


class MergeOutcome(StrEnum):
    """What a merge did, as the caller and the ``oms.branch.merged`` event report it."""

    UP_TO_DATE = "UP_TO_DATE"
    FAST_FORWARD = "FAST_FORWARD"
    MERGE_COMMIT = "MERGE_COMMIT"
    SQUASH = "SQUASH"


@dataclass(frozen=True)
class Stored:
    """A resource as read from a snapshot or written, with the etag that guards updates.

    ``commit`` is the commit a write made (empty for a read).
    """

    collection: str
    resource: Resource
    etag: str
    commit: str = ""


@dataclass(frozen=True)
class Edit:
    """One change of a batch commit: ``resource`` to upsert, or ``None`` to delete ``key``.

    An empty ``key`` stands for a change that named neither, reported with the others. Keys
    of objects and links (``oms.objects``) put data in the same commit.
    """

    key: str
    resource: Resource | None
    etag: str = ""
    object_type: str | None = None
    """For an object upsert, its type: the key follows from the type's primary key, which
    the batch itself may define."""


@dataclass(frozen=True)
class Force:
    """An administrator's decision to accept breaking changes, and why."""

    force: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ViaProposal:
    """A merge a proposal asks for.

    It is held to the rules the proposal was validated under as well as the target's current
    ones, and to the approvals in its thread.
    """

    proposal: str
    author: str
    validated: BranchRules
    reviews: tuple[Review, ...]


@dataclass(frozen=True)
class DiffPage:
    """One page of the changes between two resolved commits; later pages compare the same two."""

    base: CommitRecord
    head: CommitRecord
    changes: list[ResourceChange]
    next_page_token: str
    resume: Callable[[int], str] | None = field(default=None, compare=False, repr=False)
    """The token that goes on after the first ``k`` changes (:func:`common.pages.fit`)."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge did, the target's head after it, and the compatibility findings it raised."""

    outcome: MergeOutcome
    commit: CommitRecord
    findings: list[Finding] = field(default_factory=list)
    approved_by: tuple[str, ...] = ()
    """Through a proposal: the reviewers whose approval of the source head it counted."""


@dataclass(frozen=True)
class Validation:
    """The findings from ``base`` to ``head`` under ``mode``; ``passed`` when none is breaking."""

    passed: bool
    mode: str
    base: CommitRecord
    head: CommitRecord
    findings: list[Finding]
    affected: list[Affected] = field(default_factory=list)
    """The objects of ``base`` the change makes invalid; any fails the validation."""


@dataclass(frozen=True)
class Comparison:
    """Two snapshots, the keys of the resources that differ (sorted) and their findings."""

    old: Snapshot
    new: Snapshot
    keys: list[str]
    findings: list[Finding]


def clamp_page_size(size: int, default: int = DEFAULT_PAGE_SIZE) -> int:
    return pages.page_size(size, default=default, maximum=MAX_PAGE_SIZE)


class OntologyService:
    """Every OMS operation, free of transport concerns; callers pass the verified principal."""

    def __init__(self, store: OntologyStore) -> None:
        self.store = store
        self.refs = Refs(store)

    # -- reading resources ----------------------------------------------------------------

    def snapshot_at(self, branch: str, revision: str) -> Snapshot:
        """The snapshot at ``revision`` when given, else at the head of ``branch``."""
        if revision:
            return self.store.snapshot(self.refs.resolve(revision, field="revision").id)
        return self.store.snapshot(self.store.branch(branch).head)

    @staticmethod
    def _stored(snapshot: Snapshot, key: str) -> Stored:
        collection, api_name = split_key(key)
        etag = snapshot.etag(key)
        if etag is None:
            raise errors.NotFound(
                f"{SINGULAR[collection].replace('_', ' ')} {quoted(api_name)} not found",
                reason="RESOURCE_NOT_FOUND",
                metadata={"resource": key, "commit": snapshot.commit.id},
            )
        return Stored(collection, snapshot[key], etag)

    def get(self, branch: str, collection: str, api_name: str, revision: str = "") -> Stored:
        return self._stored(self.snapshot_at(branch, revision), resource_key(collection, api_name))

    def list_resources(
        self, branch: str, collection: str, *, revision: str, page_size: int, page_token: str
    ) -> pages.Page[Stored]:
        """A page in api_name order; later pages read the commit the first one read."""
        size = clamp_page_size(page_size)
        after = ""
        if page_token:
            state = pages.decode(page_token, query={"list": collection})
            snapshot = self.store.snapshot(self.store.commit(str(state.get("commit"))).id)
            after = str(state.get("after", ""))
        else:
            snapshot = self.snapshot_at(branch, revision)
        prefix = collection + "/"
        keys = list(snapshot)
        start = bisect_right(keys, max(after, prefix))
        found = [k for k in keys[start : start + size + 1] if k.startswith(prefix)]
        page = pages.cut(
            found,
            size,
            lambda last: pages.encode(
                {"commit": snapshot.commit.id, "after": last}, query={"list": collection}
            ),
        )
        snapshot.prefetch(page.items)
        return page.with_items([self._stored(snapshot, k) for k in page.items])

    # -- writing resources ----------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        branch: str,
        collection: str,
        raw: Mapping[str, Any],
        message: str,
        force: Force = Force(),
    ) -> Stored:
        resource = normalize(collection, raw)
        head = self.store.branch(branch)
        snapshot = self.store.snapshot(head.head)
        api_name = resource.get("api_name")
        key = resource_key(collection, api_name if isinstance(api_name, str) else "")
        if api_name and key in snapshot:
            raise errors.AlreadyExists(
                f"{key} already exists on branch {quoted(branch)}",
                reason="RESOURCE_EXISTS",
                metadata={"resource": key, "branch": branch},
            )
        return self._write_one(
            principal, head, snapshot, collection, key, resource, message or f"Create {key}", force
        )

    def update(
        self,
        principal: Principal,
        branch: str,
        collection: str,
        raw: Mapping[str, Any],
        *,
        mask: Sequence[str],
        explicit: Mapping[str, Any],
        etag: str,
        message: str,
        force: Force = Force(),
    ) -> Stored:
        """Replace the fields in ``mask`` (every field when empty) with those of ``explicit``."""
        api_name = raw.get("api_name")
        if not isinstance(api_name, str) or not api_name:
            raise errors.invalid([FieldViolation(f"{SINGULAR[collection]}.api_name", "required")])
        key = resource_key(collection, api_name)
        head = self.store.branch(branch)
        snapshot = self.store.snapshot(head.head)
        current = self._stored(snapshot, key)
        _check_etag(key, etag, current.etag)
        if mask:
            unknown = [p for p in mask if p not in FIELDS[collection] or p == "api_name"]
            if unknown:
                raise errors.invalid(
                    [
                        FieldViolation("update_mask", f"cannot update {quoted(p)}", "INVALID_VALUE")
                        for p in unknown
                    ]
                )
            merged = dict(current.resource)
            for path in mask:
                if path in explicit:
                    merged[path] = explicit[path]
                else:
                    merged.pop(path, None)
            resource = normalize(collection, merged)
        else:
            resource = normalize(collection, raw)
        return self._write_one(
            principal, head, snapshot, collection, key, resource, message or f"Update {key}", force
        )

    def delete(
        self,
        principal: Principal,
        branch: str,
        collection: str,
        api_name: str,
        *,
        etag: str,
        message: str,
        force: Force = Force(),
    ) -> CommitRecord:
        key = resource_key(collection, api_name)
        head = self.store.branch(branch)
        snapshot = self.store.snapshot(head.head)
        current = self._stored(snapshot, key)
        _check_etag(key, etag, current.etag)
        violations = check_delete(collection, api_name, snapshot)
        if violations:
            raise errors.FailedPrecondition(
                f"{key} is still referenced", reason="RESOURCE_IN_USE", violations=violations
            )
        return self.commit_onto(
            principal, head, snapshot, {key: None}, message or f"Delete {key}", force
        )

    def commit_changes(
        self,
        principal: Principal,
        branch: str,
        edits: Sequence[Edit],
        *,
        message: str,
        expected_head: str,
        force: Force,
    ) -> CommitRecord:
        """Apply every edit in one commit; all are checked together against the result."""
        if not edits:
            raise errors.invalid([FieldViolation("changes", "at least one change is required")])
        if not message.strip():
            raise errors.invalid([FieldViolation("message", "a commit message is required")])
        head = self.store.branch(branch)
        if expected_head and expected_head != head.head:
            raise head_moved(branch, expected_head, head.head)
        snapshot = self.store.snapshot(head.head)
        snapshot.prefetch(e.key for e in edits)
        changes: dict[str, Resource | None] = {}
        position: dict[str, int] = {}
        violations: list[FieldViolation] = []
        objects: list[tuple[int, Edit]] = []
        if any(
            e.object_type is not None or is_data_key(e.key) for e in edits
        ) and not principal.has(Permission.OBJECT_WRITE):
            raise errors.PermissionDenied(
                "changing objects needs object:write",
                reason="MISSING_PERMISSION",
                metadata={"permission": Permission.OBJECT_WRITE.value},
            )
        for i, edit in enumerate(edits):
            if edit.object_type is not None:
                objects.append((i, edit))  # keyed once the batch's schema is known
                continue
            if not edit.key:
                violations.append(
                    FieldViolation(f"changes[{i}]", "set upsert (with a resource) or delete")
                )
                continue
            collection = edit.key.partition("/")[0]
            try:
                if not is_data_key(edit.key):
                    split_key(edit.key)
                elif not is_well_formed(edit.key):
                    raise errors.InvalidArgument("not a data key")
            except errors.InvalidArgument:
                if edit.resource is not None and collection in FIELDS:
                    # An upsert without a usable api_name: report it with its other problems.
                    unnamed = normalize(collection, edit.resource)
                    violations.extend(
                        FieldViolation(f"changes[{i}].upsert.{v.field}", v.description, v.reason)
                        for v in check_resource(collection, unnamed, snapshot)
                    )
                else:
                    violations.append(
                        FieldViolation(
                            f"changes[{i}]", f"not a resource: {quoted(edit.key)}", "INVALID_VALUE"
                        )
                    )
                continue
            resource = edit.resource
            if resource is not None and not is_data_key(edit.key):
                resource = normalize(collection, resource)
            violations.extend(_place(changes, position, snapshot, i, edit, resource))
        data_paths = {
            k: f"changes[{i}].{'delete' if changes[k] is None else 'link'}"
            for k, i in position.items()
            if is_data_key(k)
        }
        schema = Overlay(snapshot, changes)
        rules: dict[str, TypeRules | None] = {}
        checked: set[str] = set()  # object keys whose values _keyed_object checked
        for i, edit in objects:
            found, key, stored = _keyed_object(schema, rules, i, edit)
            violations.extend(found)
            if key:
                violations.extend(_place(changes, position, snapshot, i, edit, stored, key))
                data_paths[key] = f"changes[{i}].object"
                checked.add(key)
        after = Overlay(snapshot, changes)
        violations.extend(
            check_data(after, changes, snapshot, where=data_paths, values_checked=checked)
        )
        for key, found in check_changes(after, schema_part(changes), before=snapshot).items():
            if key in position:
                where = f"changes[{position[key]}].upsert"
                violations.extend(
                    FieldViolation(f"{where}.{v.field}", v.description, v.reason) for v in found
                )
            else:
                violations.extend(
                    FieldViolation("changes", f"breaks {key}: {v.field}: {v.description}", v.reason)
                    for v in found
                )
        if violations:
            raise errors.invalid(violations)
        paths = {k: f"changes[{i}].upsert" for k, i in position.items()} | data_paths
        return self.commit_onto(principal, head, snapshot, changes, message, force, where=paths)

    def _write_one(
        self,
        principal: Principal,
        head: BranchRecord,
        snapshot: Snapshot,
        collection: str,
        key: str,
        resource: Resource,
        message: str,
        force: Force,
    ) -> Stored:
        """Check one resource whole against the head it was read from, then commit it."""
        violations = check_resource(collection, resource, snapshot)
        if violations:
            raise errors.invalid(violations)
        commit = self.commit_onto(
            principal,
            head,
            snapshot,
            {key: resource},
            message,
            force,
            where={key: SINGULAR[collection]},
        )
        return Stored(collection, resource, resource_etag(resource), commit.id)

    def commit_onto(
        self,
        principal: Principal,
        branch: BranchRecord,
        snapshot: Snapshot,
        changes: Mapping[str, Resource | None],
        message: str,
        force: Force,
        also: EventsFor | None = None,
        where: Mapping[str, str] | None = None,
    ) -> CommitRecord:
        """Commit checked changes onto ``snapshot`` (the branch head they were checked on).

        ``also`` adds events of the caller's (an action's) to the commit's transaction;
        ``where`` names the request field each changed key came from, for violations.

        A schema change the branch's own objects would violate is refused
        (``DATA_VIOLATES_SCHEMA``, counting the affected objects with examples). Writes refused
        on a protected branch (it requires proposals, or they break it) are
        recorded (``oms.commit.refused``) in a transaction of their own; a forced commit's
        events name the force and its reason.
        """
        texts = {k: canonical_json(v) for k, v in changes.items() if v is not None}
        found = long_texts(message=message, force_reason=force.reason)
        if found := found + outsized(changes, texts, where or {}):
            raise errors.invalid(found)
        broken = schema_data_violations(Overlay(snapshot, changes), changes, snapshot, snapshot)
        if broken:
            raise errors.FailedPrecondition(
                f"the objects on {quoted(branch.name)} would violate the changed schema",
                reason="DATA_VIOLATES_SCHEMA",
                metadata={"branch": branch.name},
                violations=[a.violation() for found in broken.values() for a in found],
            )
        forced = False
        if branch.protected:
            try:
                refuse_direct(branch, "writes")
                findings = self.findings(
                    snapshot,
                    Overlay(snapshot, changes),
                    changes,
                    rules=BranchRules.of(branch),
                    lineage=branch.head,
                )
                forced = allow_breaking(
                    principal, branch.name, branch.compatibility_mode, findings, force
                )
            except errors.FailedPrecondition as refusal:
                self.store.record_events([_commit_refused(principal, branch, changes, refusal)])
                raise
        forcing = {"forced": True, "force_reason": force.reason} if forced else {}
        snapshot.prefetch(k for k in changes if is_data_key(k))
        data_before = {k: snapshot.get(k) for k in changes if is_data_key(k)}

        def events(commit: CommitRecord) -> list[OutboxEvent]:
            out = []
            for key, resource in sorted(changes.items()):
                if key in data_before:
                    where = DataChange(principal.username, branch.name, commit.id, forcing)
                    out.append(data_event(where, key, data_before[key], resource))
                    continue
                kind = (
                    "deleted" if resource is None else "updated" if key in snapshot else "created"
                )
                out.append(
                    OutboxEvent(
                        type=f"oms.schema.{kind}",
                        subject=f"branches/{branch.name}/{key}",
                        actor=principal.username,
                        data={
                            "branch": branch.name,
                            "resource": key,
                            "commit": commit.id,
                            **forcing,
                        },
                    )
                )
            return [*out, *(also(commit) if also else ())]

        return self.store.write_commit(
            branch.name,
            branch.head,
            NewCommit(
                parents=(branch.head,),
                changes=changes,
                author=principal.username,
                message=message,
                forced=forced,
                force_reason=force.reason if forced else "",
                texts=texts,
            ),
            events,
        )

    # -- branches -------------------------------------------------------------------------

    def create_branch(
        self,
        principal: Principal,
        name: str,
        *,
        source: str,
        base_branch: str,
        compatibility_mode: str,
    ) -> tuple[BranchRecord, CommitRecord]:
        violations = ref_name_violations(name)
        mode = _mode(compatibility_mode, "compatibility_mode", violations)
        if violations:
            raise errors.invalid(violations)
        source = source or MAIN
        start = self.refs.resolve(source, field="source")
        if not base_branch:
            try:
                base_branch = self.store.branch(source).name
            except errors.NotFound:
                base_branch = MAIN  # a tag, a commit id, `main~1`: no branch to follow
        self.store.branch(base_branch)
        record = BranchRecord(
            name=name,
            head=start.id,
            base_branch=base_branch,
            protected=False,
            compatibility_mode=mode or CompatibilityMode.BACKWARD.value,
            creator=principal.username,
            created_ns=times.now(),
        )
        created = self.store.create_branch(
            record,
            OutboxEvent(
                type="oms.branch.created",
                subject=f"branches/{name}",
                actor=principal.username,
                data={"branch": name, "source": source, "head": start.id, "base": base_branch},
            ),
        )
        return created, start

    def get_branch(self, name: str) -> tuple[BranchRecord, CommitRecord]:
        branch = self.store.branch(name)
        return branch, self.store.commit(branch.head)

    def list_branches(self, *, page_size: int, page_token: str) -> pages.Page[BranchRecord]:
        size = clamp_page_size(page_size)
        query = {"list": "branches"}
        found = self.store.branches(after=pages.after(page_token, query=query), limit=size + 1)
        return pages.cut_after(found, size, lambda branch: branch.name, query=query)

    def update_branch(
        self,
        principal: Principal,
        name: str,
        mask: Sequence[str],
        values: Mapping[str, Any],
        *,
        reason: str = "",
    ) -> tuple[BranchRecord, CommitRecord]:
        """Change the settings in ``mask``.

        A protected branch's settings are its rules: changing one needs an administrator and
        a reason, and is recorded as ``oms.branch.settings_changed`` with the reason; other
        branches' changes are ``oms.branch.updated``.
        """
        violations: list[FieldViolation] = []
        if not mask:
            violations.append(FieldViolation("update_mask", "name the fields to update"))
        violations.extend(
            FieldViolation("update_mask", f"cannot update {quoted(p)}", "INVALID_VALUE")
            for p in mask
            if p not in BRANCH_SETTINGS
        )
        requested = [p for p in BRANCH_SETTINGS if p in mask]
        settings: dict[str, BranchSetting] = {p: values[p] for p in requested}
        if "compatibility_exemptions" in settings:
            exemptions = tuple(values["compatibility_exemptions"])
            violations.extend(
                FieldViolation(
                    f"branch.compatibility_exemptions[{i}]",
                    f"{quoted(rule)} is no rule id (ListCompatibilityRules lists them)",
                    "INVALID_VALUE",
                )
                for i, rule in enumerate(exemptions)
                if rule not in RULES
            )
            settings["compatibility_exemptions"] = tuple(sorted(set(exemptions)))
        if "compatibility_mode" in settings:
            mode = _mode(
                str(settings["compatibility_mode"]), "branch.compatibility_mode", violations
            )
            if not mode:
                violations.append(FieldViolation("branch.compatibility_mode", "required"))
        approvals = int(values["required_approvals"]) if "required_approvals" in settings else 0
        if not 0 <= approvals <= MAX_REQUIRED_APPROVALS:
            violations.append(
                FieldViolation(
                    "branch.required_approvals",
                    f"between 0 and {MAX_REQUIRED_APPROVALS}",
                    "OUT_OF_RANGE",
                )
            )
        if violations:
            raise errors.invalid(violations)
        current = self.store.branch(name)
        # A protected branch's mode decides what counts as breaking there: lowering it would
        # let anyone merge what only a forcing administrator may.
        if ("protected" in mask or current.protected) and not principal.has(Permission.ALL):
            raise errors.PermissionDenied(
                "only an administrator can change branch protection"
                if "protected" in mask
                else f"only an administrator can change protected branch {quoted(name)}",
                reason="ADMIN_REQUIRED",
                metadata={"branch": name},
            )
        if current.protected and not reason.strip():
            raise errors.invalid(
                [
                    FieldViolation(
                        "reason", f"say why the rules of {quoted(name)} change", "REQUIRED"
                    )
                ]
            )
        if "base_branch" in settings:
            self.store.branch(str(settings["base_branch"]))
        governed = current.protected

        def event(before: BranchRecord, after: BranchRecord) -> OutboxEvent:
            data: dict[str, Any] = {
                "branch": name,
                "fields": requested,
                "before": {p: getattr(before, p) for p in requested},
                "after": {p: getattr(after, p) for p in requested},
            }
            if governed:
                data["reason"] = reason
            return OutboxEvent(
                type="oms.branch.settings_changed" if governed else "oms.branch.updated",
                subject=f"branches/{name}",
                actor=principal.username,
                data=data,
            )

        updated = self.store.update_branch(name, event, settings)
        return updated, self.store.commit(updated.head)

    def delete_branch(self, principal: Principal, name: str) -> None:
        branch = self.store.branch(name)
        self.store.delete_branch(
            name,
            OutboxEvent(
                type="oms.branch.deleted",
                subject=f"branches/{name}",
                actor=principal.username,
                data={"branch": name, "head": branch.head},
            ),
        )

    # -- history and diff -----------------------------------------------------------------

    def list_commits(
        self, ref: str, *, resource: str, page_size: int, page_token: str
    ) -> pages.Page[CommitRecord]:
        if resource:
            try:
                split_key(resource)
            except errors.InvalidArgument as exc:
                description = "not a resource key like object-types/Employee"
                raise errors.InvalidArgument(
                    f"resource: {description}",
                    reason="INVALID_RESOURCE_KEY",
                    violations=[FieldViolation("resource", description, "INVALID_VALUE")],
                ) from exc
        size = clamp_page_size(page_size)
        query = {"log": ref, "resource": resource}
        if page_token:
            state = pages.decode(page_token, query=query)
            frontier = [str(c) for c in state.get("frontier", [])]
            for commit_id in frontier:
                self.store.commit(commit_id)
        else:
            frontier = [self.refs.resolve(ref, field="branch").id]
        found, rest = self.store.log(frontier, resource=resource or None, limit=size)
        token = pages.encode({"frontier": rest}, query=query) if rest else ""

        def resume(count: int) -> str:
            """The walk again, to where the first ``count`` commits end (a page cut short)."""
            _, after = self.store.log(frontier, resource=resource or None, limit=count)
            return pages.encode({"frontier": after}, query=query)

        return pages.Page(found, token, resume)

    def get_commit(self, ref: str) -> CommitRecord:
        return self.refs.resolve(ref, field="id")

    def changes_of(self, commits: Sequence[CommitRecord]) -> list[CommitChanges]:
        """Each commit with its inline changes: what every response carrying a commit shows."""
        out = []
        for commit in commits:
            changes, count = self.store.changes_in(commit.id, limit=INLINE_CHANGES)
            out.append(CommitChanges(commit, changes, count))
        return out

    def diff(self, base: str, head: str, *, page_size: int, page_token: str) -> DiffPage:
        size = clamp_page_size(page_size, default=100)
        query = {"diff": [base, head]}
        if page_token:
            state = pages.decode(page_token, query=query)
            old = self.store.commit(str(state.get("base")))
            new = self.store.commit(str(state.get("head")))
            after = str(state.get("after", ""))
        else:
            old = self.refs.resolve(base, field="base")
            new, after = self.refs.resolve(head, field="head"), ""
        keys = sorted(k for k in self.store.changed_keys(old.id, new.id) if k > after)
        page = keys[:size]
        old_snapshot, new_snapshot = self.store.snapshot(old.id), self.store.snapshot(new.id)
        old_snapshot.prefetch(page)
        new_snapshot.prefetch(page)
        changes = diff_snapshots(old_snapshot, new_snapshot, page)

        def token_after(key: str) -> str:
            return pages.encode({"base": old.id, "head": new.id, "after": key}, query=query)

        token = token_after(page[-1]) if len(keys) > size else ""
        return DiffPage(old, new, changes, token, lambda count: token_after(changes[count - 1].key))

    # -- merge and validation -------------------------------------------------------------

    def merge(
        self,
        principal: Principal,
        source: str,
        *,
        target: str,
        strategy: MergeStrategy,
        message: str,
        force: Force,
        via: ViaProposal | None = None,
        resolutions: Sequence[Resolution] = (),
    ) -> MergeResult:
        """Merge ``source`` into ``target`` (default: its base branch), ``via`` a proposal.

        ``resolutions`` settle conflicts. Nothing is merged on conflicts, invalid results,
        refused breaking changes, a target that takes proposals only (without ``via``) or
        missing approvals; the refusal is recorded (``oms.branch.merge_refused``) in a
        transaction of its own.
        """
        check_resolutions(resolutions)
        if found := long_texts(message=message, force_reason=force.reason):
            raise errors.invalid(found)
        src = self.store.branch(source)
        target = target or src.base_branch
        try:
            return self._merge(
                principal,
                src,
                target,
                strategy=strategy,
                message=message,
                force=force,
                resolutions=resolutions,
                via=via,
            )
        except errors.FailedPrecondition as refusal:
            if refusal.reason in MERGE_REFUSALS:
                event = _merge_refused(principal, source, target, refusal, via)
                self.store.record_events([event])
            raise

    def _merge(
        self,
        principal: Principal,
        src: BranchRecord,
        target: str,
        *,
        strategy: MergeStrategy,
        message: str,
        force: Force,
        via: ViaProposal | None,
        resolutions: Sequence[Resolution],
    ) -> MergeResult:
        source = src.name
        if target == source:
            raise errors.invalid([FieldViolation("target", "cannot merge a branch into itself")])
        dst = self.store.branch(target)
        theirs_id, ours_id = src.head, dst.head
        rules = BranchRules.of(dst)
        approved: list[Review] = []
        if via is None:
            refuse_direct(dst, "merges")
        else:
            rules = rules.stricter(via.validated)
            approved = approvers(via.reviews, source_head=theirs_id, author=via.author, rules=rules)
            check_approvals(rules, approved, target=target)
        approved_by = tuple(sorted(r.reviewer for r in approved))
        base_id = self.store.merge_base(theirs_id, ours_id)
        if base_id is None:
            raise errors.FailedPrecondition(
                f"{source} and {target} share no history", reason="NO_MERGE_BASE"
            )
        what = f"merging {source} into {target}"
        metadata = {"source": source, "target": target, "merge_base": base_id}
        if base_id == theirs_id:
            nothing_to_resolve(resolutions, what, metadata)
            return MergeResult(
                MergeOutcome.UP_TO_DATE, self.store.commit(ours_id), approved_by=approved_by
            )
        ours = self.store.snapshot(ours_id)
        theirs = self.store.snapshot(theirs_id)
        theirs_keys = self.store.changed_keys(base_id, theirs_id)
        fast_forward = base_id == ours_id
        parents: tuple[str, ...]
        if fast_forward:
            nothing_to_resolve(resolutions, what, metadata)
            theirs.prefetch(theirs_keys)
            changes: dict[str, Resource | None] = {k: theirs.get(k) for k in theirs_keys}
        else:
            keys = theirs_keys | self.store.changed_keys(base_id, ours_id)
            base = self.store.snapshot(base_id)
            for snapshot in (base, ours, theirs):
                snapshot.prefetch(keys)
            result = merge_snapshots(base, ours, theirs, keys, resolutions)
            if not result.clean:
                result.refuse(what, metadata)
            changes = result.changes
        mode = rules.compatibility_mode
        findings = self.findings(
            ours, Overlay(ours, changes), changes, rules=rules, lineage=ours_id
        )
        forced = (
            allow_breaking(principal, target, mode, findings, force) if rules.protected else False
        )
        force_approved_by = second_admins(principal.username, approved) if forced and via else ()
        if strategy is MergeStrategy.SQUASH:
            outcome, parents = MergeOutcome.SQUASH, (ours_id,)
        elif fast_forward and not forced:
            outcome, parents = MergeOutcome.FAST_FORWARD, ()
        else:
            outcome, parents = MergeOutcome.MERGE_COMMIT, (ours_id, theirs_id)

        def events(commit: CommitRecord) -> list[OutboxEvent]:
            return [
                OutboxEvent(
                    type="oms.branch.merged",
                    subject=f"branches/{target}",
                    actor=principal.username,
                    data={
                        "source": source,
                        "target": target,
                        "outcome": outcome.value,
                        "commit": commit.id,
                        "source_head": theirs_id,
                        "changes": len(changes),
                        "forced": forced,
                        "force_reason": force.reason if forced else "",
                        **_proposal_fields(via, force_approved_by),
                    },
                )
            ]

        if outcome is MergeOutcome.FAST_FORWARD:
            commit = self.store.move_branch(target, ours_id, theirs_id, events)
        else:
            commit = self.store.write_commit(
                target,
                ours_id,
                NewCommit(
                    parents=parents,
                    changes=changes,
                    author=principal.username,
                    message=message or f"Merge {source} into {target}",
                    forced=forced,
                    force_reason=force.reason if forced else "",
                    force_approved_by=force_approved_by,
                ),
                events,
            )
        return MergeResult(outcome, commit, findings, approved_by)

    def compatibility_rules(self) -> list[Rule]:
        """The published catalogue: every rule a finding can name, by rule id."""
        return sorted(RULES.values(), key=lambda rule: rule.rule_id)

    def departure(self, head: CommitRecord, base_branch: BranchRecord) -> CommitRecord:
        """Where ``head`` left ``base_branch``: their merge base, else the branch's head."""
        base_id = self.store.merge_base(head.id, base_branch.head) or base_branch.head
        return self.store.commit(base_id)

    def compare(self, base: CommitRecord, head: CommitRecord, rules: BranchRules) -> Comparison:
        """The changes from ``base`` to ``head`` and their findings under ``rules``."""
        keys = self.store.changed_keys(base.id, head.id)
        old, new = self.store.snapshot(base.id), self.store.snapshot(head.id)
        old.prefetch(keys)
        new.prefetch(keys)
        findings = self.findings(old, new, keys, rules=rules, lineage=base.id)
        return Comparison(old, new, sorted(keys), findings)

    def findings(
        self,
        old: Snapshot,
        new: Ontology,
        keys: Iterable[str],
        *,
        rules: BranchRules,
        lineage: str,
    ) -> list[Finding]:
        """The compatibility findings of ``old`` -> ``new`` under a branch's rules.

        A transitive mode also compares ``new`` with every released version: each tag whose
        commit is on ``lineage``'s history (at most :data:`MAX_RELEASES`, the newest), over the
        same keys, with ``old``'s deprecations (a deprecation released since lets a removal
        pass). Findings of exempted rules never break.
        """
        keys = list(keys)
        mode = CompatibilityMode(rules.compatibility_mode)
        found = check_compatibility(old, new, mode, keys)
        if mode.transitive:
            seen = {(f.rule_id, f.path) for f in found}
            for tag in self._releases(lineage):
                released = self.store.snapshot(tag.commit)
                for finding in check_compatibility(released, new, mode, keys, deprecations=old):
                    if (finding.rule_id, finding.path) not in seen:
                        seen.add((finding.rule_id, finding.path))
                        found.append(replace(finding, against=tag.name))
        return exempt(found, rules.compatibility_exemptions)

    def _releases(self, lineage: str) -> list[TagRecord]:
        """The tags on ``lineage``'s history, newest first, at most :data:`MAX_RELEASES`."""
        tags = self.store.tags(after="", limit=MAX_TAGS_SCANNED)
        tags.sort(key=lambda t: t.created_ns, reverse=True)
        # Each test walks history, so stop at the newest MAX_RELEASES rather than test every tag.
        on_history = (t for t in tags if self.store.merge_base(t.commit, lineage) == t.commit)
        return list(itertools.islice(on_history, MAX_RELEASES))

    def validate(self, principal: Principal, branch: str, *, against: str, mode: str) -> Validation:
        """Compare ``branch`` with ``against``, or with where it left its base branch."""
        violations: list[FieldViolation] = []
        checked_mode = _mode(mode, "mode", violations)
        if violations:
            raise errors.invalid(violations)
        record = self.store.branch(branch)
        head = self.store.commit(record.head)
        if against:
            base = self.refs.resolve(against, field="against")
        else:
            base = self.departure(head, self.store.branch(record.base_branch))
        checked_mode = checked_mode or record.compatibility_mode
        rules = replace(BranchRules.of(record), compatibility_mode=checked_mode)
        comparison = self.compare(base, head, rules)
        findings = comparison.findings
        types = {
            k: comparison.new.get(k) for k in comparison.keys if k.startswith(OBJECT_TYPES + "/")
        }
        old = comparison.old
        affected = [
            a
            for found in schema_data_violations(Overlay(old, types), types, old, old).values()
            for a in found
        ]
        passed = not has_breaking(findings) and not affected
        self.store.record_events(
            [
                OutboxEvent(
                    type=f"oms.validation.{'passed' if passed else 'failed'}",
                    subject=f"branches/{branch}",
                    actor=principal.username,
                    data={
                        "branch": branch,
                        "base": base.id,
                        "head": head.id,
                        "mode": checked_mode,
                        "breaking": sum(f.severity is Severity.BREAKING for f in findings),
                        "findings": len(findings),
                        "affected_objects": sum(a.count for a in affected),
                    },
                )
            ]
        )
        return Validation(passed, checked_mode, base, head, findings, affected)


def _place(
    changes: dict[str, Resource | None],
    position: dict[str, int],
    snapshot: Snapshot,
    i: int,
    edit: Edit,
    resource: Resource | None,
    key: str = "",
) -> list[FieldViolation]:
    """Put change ``i`` of a batch under its key.

    A key changed twice or a delete of nothing is a violation, a stale etag an abort.
    """
    key = key or edit.key
    out: list[FieldViolation] = []
    if key in changes:
        out.append(FieldViolation(f"changes[{i}]", f"{key} is changed twice", "DUPLICATE"))
    current = snapshot.etag(key)
    if edit.etag:
        _check_etag(key, edit.etag, current or "")
    if resource is None and current is None:
        out.append(FieldViolation(f"changes[{i}].delete", f"{key} does not exist", "NOT_FOUND"))
    changes[key] = resource
    position[key] = i
    return out


def _keyed_object(
    schema: Ontology, rules: dict[str, TypeRules | None], i: int, edit: Edit
) -> tuple[list[FieldViolation], str, Resource]:
    """An object upsert of a batch: its violations, its key and its stored form.

    The key is under the type's primary key; without a usable one there is none. ``rules``
    holds each type's rules, read once per batch.
    """
    object_type = edit.object_type or ""
    if object_type not in rules:
        definition = schema.get(resource_key(OBJECT_TYPES, object_type))
        rules[object_type] = None if definition is None else TypeRules(definition)
    type_rules = rules[object_type]
    values = edit.resource or {}
    if type_rules is None:
        missing = FieldViolation(
            f"changes[{i}].object.object_type",
            f"no object type {quoted(object_type)} on this branch",
            "UNKNOWN_TYPE",
        )
        return [missing], "", dict(values)
    found, stored = type_rules.check(values, path=f"changes[{i}].object.properties")
    pk = stored.get(type_rules.primary_key)
    if not isinstance(pk, str | int):
        return found, "", stored
    return found, object_key(object_type, pk_text(pk)), stored


def ref_name_violations(name: str) -> list[FieldViolation]:
    """What is wrong with a new branch's or tag's name (nothing when it is fine)."""
    if BRANCH_NAME.fullmatch(name) and not COMMIT_ID.fullmatch(name):
        return []
    return [
        FieldViolation(
            "name",
            "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "and not a commit id",
            "INVALID_FORMAT",
        )
    ]


def nothing_to_resolve(
    resolutions: Sequence[Resolution], what: str, metadata: Mapping[str, str]
) -> None:
    """Refuse resolutions given to a merge that meets no conflict (up to date, fast-forward)."""
    MergedSnapshots({}, unmatched=tuple(range(len(resolutions)))).refuse(what, metadata)


MERGE_REFUSALS = frozenset(
    {
        "MERGE_CONFLICT",
        "MERGE_INVALID",
        "BREAKING_CHANGES",
        "NO_MERGE_BASE",
        "BRANCH_REQUIRES_PROPOSAL",
        "APPROVALS_REQUIRED",
        "SECOND_APPROVAL_REQUIRED",
    }
)
"""The reasons a merge is refused for what it would merge or the review it lacks, each
recorded as an event."""


def _merge_refused(
    principal: Principal,
    source: str,
    target: str,
    refusal: errors.FailedPrecondition,
    via: ViaProposal | None,
) -> OutboxEvent:
    return OutboxEvent(
        type="oms.branch.merge_refused",
        subject=f"branches/{target}",
        actor=principal.username,
        data={
            "source": source,
            "target": target,
            "reason": refusal.reason,
            "problems": len(refusal.details) + len(refusal.violations),
            **_proposal_fields(via, ()),
        },
    )


def _proposal_fields(via: ViaProposal | None, approved_by: tuple[str, ...]) -> dict[str, Any]:
    """What a merge event adds when a proposal carries the merge."""
    if via is None:
        return {}
    return {"proposal": via.proposal, "force_approved_by": list(approved_by)}


def refuse_direct(branch: BranchRecord, what: str) -> None:
    """Refuse a write or a branch merge into a protected branch that takes proposals only."""
    if branch.protected and branch.requires_proposal:
        raise errors.FailedPrecondition(
            (
                f"protected branch {quoted(branch.name)} takes "
                f"changes through proposals only, not {what}"
            ),
            reason="BRANCH_REQUIRES_PROPOSAL",
            metadata={"branch": branch.name},
        )


def _commit_refused(
    principal: Principal,
    branch: BranchRecord,
    changes: Mapping[str, Resource | None],
    refusal: errors.FailedPrecondition,
) -> OutboxEvent:
    return OutboxEvent(
        type="oms.commit.refused",
        subject=f"branches/{branch.name}",
        actor=principal.username,
        data={
            "branch": branch.name,
            "reason": refusal.reason,
            "mode": branch.compatibility_mode,
            "resources": sorted(changes),
            "breaking": len(refusal.details),
        },
    )


def _check_etag(key: str, given: str, current: str) -> None:
    if given and given != current:
        raise errors.Aborted(
            f"{key} changed since it was read (etag {quoted(given)} is stale)",
            reason="ETAG_MISMATCH",
            metadata={"resource": key, "etag": current},
        )


def head_moved(branch: str, expected: str, current: str) -> errors.Aborted:
    return errors.Aborted(
        f"branch {quoted(branch)} is at {current}, not {expected}",
        reason="BRANCH_HEAD_MOVED",
        metadata={"branch": branch, "expected_head": expected, "head": current},
    )


def _mode(value: str, field_name: str, violations: list[FieldViolation]) -> str:
    """A compatibility mode name, or ``""`` when unset; an unknown one is a violation."""
    if value and value not in CompatibilityMode.__members__:
        violations.append(
            FieldViolation(
                field_name, f"unknown compatibility mode {quoted(value)}", "INVALID_VALUE"
            )
        )
        return ""
    return value


def allow_breaking(
    principal: Principal, branch: str, mode: str, findings: list[Finding], force: Force
) -> bool:
    """Whether breaking changes into a protected branch go ahead (forced); raises otherwise."""
    breaking = [f for f in findings if f.severity is Severity.BREAKING]
    if not breaking:
        return False
    if not force.force:
        raise errors.FailedPrecondition(
            f"{len(breaking)} breaking change(s) into protected branch {quoted(branch)} "
            f"under {mode} compatibility",
            reason="BREAKING_CHANGES",
            metadata={"branch": branch, "mode": mode},
            details=breaking,
        )
    if not principal.has(Permission.ALL):
        raise errors.PermissionDenied(
            "only an administrator can force breaking changes", reason="ADMIN_REQUIRED"
        )
    if not force.reason.strip():
        raise errors.invalid(
            [FieldViolation("force_reason", "a reason is required to force breaking changes")]
        )
    return True
