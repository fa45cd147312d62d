"""What the OMS needs from a versioned ontology store, independent of how it is kept.

:class:`oms.sql_store.SqlStore` implements it on SQLite or PostgreSQL; a TerminusDB backend
(branches, diff, apply) can implement the same protocol without the service layer changing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from common.outbox import OutboxEvent
from oms.model import Resource

MAIN = "main"
"""The branch every store starts with; protected."""
BRANCH_SETTINGS = (
    "base_branch",
    "compatibility_mode",
    "protected",
    "requires_proposal",
    "required_approvals",
    "allow_self_approval",
    "compatibility_exemptions",
)
"""The fields of a :class:`BranchRecord` UpdateBranch may change."""
BranchSetting = str | bool | int | tuple[str, ...]
"""The value of one of :data:`BRANCH_SETTINGS`."""


@dataclass(frozen=True)
class CommitRecord:
    """An immutable commit: the snapshot ``root`` plus who, why, when and its parents."""

    id: str
    root: str
    parents: tuple[str, ...]
    author: str
    message: str
    time_ns: int
    generation: int
    """1 + the highest generation of the parents; orders ancestry walks."""
    forced: bool = False
    force_reason: str = ""
    force_approved_by: tuple[str, ...] = ()
    """The administrators besides the author who approved a forced proposal's merge."""
    refs: str | None = None
    """The root of the reverse-reference index (target key -> referrer keys) of the snapshot;
    ``None`` for a commit stored before the index existed."""
    data: str | None = None
    """The root of the snapshot's objects and links (``oms.objects``); ``None`` when it has
    none."""


@dataclass(frozen=True)
class CommitChanges:
    """A commit with the first of its changes (key, ADDED|MODIFIED|DELETED) and their count."""

    commit: CommitRecord
    changes: list[tuple[str, str]]
    count: int


@dataclass(frozen=True)
class BranchRecord:
    """A named, movable pointer to a commit, with its validation settings."""

    name: str
    head: str
    base_branch: str
    protected: bool
    compatibility_mode: str
    creator: str
    created_ns: int
    requires_proposal: bool = False
    """Direct writes and branch merges are refused: changes arrive through proposals only."""
    required_approvals: int = 0
    allow_self_approval: bool = True
    compatibility_exemptions: tuple[str, ...] = ()
    """Rule ids (oms.compat.RULES) whose findings never break this branch (buf's ``except``)."""


@dataclass(frozen=True)
class TagRecord:
    """A named, immutable pointer to a commit: created once, never moved, maybe deleted."""

    name: str
    commit: str
    message: str
    creator: str
    created_ns: int


@dataclass(frozen=True)
class NewCommit:
    """What a writer asks the store to record; the store computes the snapshot and the id."""

    parents: tuple[str, ...]
    """The first parent is the snapshot ``changes`` apply to."""
    changes: Mapping[str, Resource | None]
    """Resource key -> new content, ``None`` to delete."""
    author: str
    message: str
    forced: bool = False
    force_reason: str = ""
    force_approved_by: tuple[str, ...] = ()
    texts: Mapping[str, str] = field(default_factory=dict)
    """Canonical JSON of changes the writer encoded already (to measure them), by key."""


EventsFor = Callable[[CommitRecord], Sequence[OutboxEvent]]
"""Builds the events of a commit once its id is known; written in the same transaction."""
BranchEvent = Callable[["BranchRecord", "BranchRecord"], OutboxEvent]
"""Builds the event of a branch's new settings from the branch before and after the change."""


class Snapshot(Mapping[str, Resource], ABC):
    """An ontology at one commit, loaded lazily: opening it costs one root, not the ontology."""

    commit: CommitRecord

    @abstractmethod
    def etag(self, key: str) -> str | None:
        """The content hash of a resource, ``None`` when absent."""

    @abstractmethod
    def prefetch(self, keys: Iterable[str]) -> None:
        """Load these resources in bulk before they are read one by one."""

    @abstractmethod
    def referrers(self, key: str) -> frozenset[str] | None:
        """Keys of the resources referring to ``key``, without reading the others.

        ``None`` when this snapshot keeps no index, and checks must scan instead.
        """

    @abstractmethod
    def object_keys(self, object_type: str) -> list[str]:
        """The primary keys of the objects of one type, sorted; reads that type's data only."""

    @abstractmethod
    def objects(self, object_type: str, pks: Iterable[str]) -> Iterator[tuple[str, Resource]]:
        """The objects of one type with these primary keys, in that order, read a chunk at a time.

        Absent keys are skipped. Lazy, so a caller that stops early reads no further. Scans go
        through here rather than key by key: it skips building, encoding and hashing each key.
        """

    @abstractmethod
    def linked(self, link_type: str, pk: str, *, reverse: bool) -> list[str]:
        """The primary keys linked to ``pk``, sorted; reads one bucket.

        ``pk`` is a ``from`` end, or a ``to`` end when ``reverse``.
        """


class OntologyStore(Protocol):
    """Branches, commits and snapshots; every method is atomic."""

    def commit(self, commit_id: str) -> CommitRecord: ...

    def commit_ids(self, prefix: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of stored commits starting with ``prefix``, in order."""
        ...

    def snapshot(self, commit_id: str) -> Snapshot: ...

    def changed_keys(self, old_commit: str, new_commit: str) -> set[str]:
        """The resource keys whose content differs; costs the number of differing buckets."""
        ...

    def changes_in(self, commit_id: str, *, limit: int) -> tuple[list[tuple[str, str]], int]:
        """A commit's first ``limit`` changes and how many it has in all.

        Each is (key, ADDED|MODIFIED|DELETED) relative to the first parent, in key order.
        """
        ...

    def merge_base(self, a: str, b: str) -> str | None:
        """The nearest common ancestor of two commits (highest generation)."""
        ...

    def log(
        self, frontier: Sequence[str], *, resource: str | None, limit: int
    ) -> tuple[list[CommitRecord], list[str]]:
        """Commits reachable from ``frontier``, newest first, and the frontier to continue from.

        With ``resource``, only the commits that changed it; a page may then stop short of
        ``limit`` (even empty) with a frontier, to bound the commits one call walks.
        """
        ...

    def branch(self, name: str) -> BranchRecord: ...

    def branches(self, *, after: str, limit: int) -> list[BranchRecord]: ...

    def create_branch(self, branch: BranchRecord, event: OutboxEvent) -> BranchRecord: ...

    def update_branch(
        self, name: str, event: BranchEvent, settings: Mapping[str, BranchSetting]
    ) -> BranchRecord:
        """Change the settings given, with ``event`` of the change, in one transaction.

        ``settings`` maps a :data:`BRANCH_SETTINGS` name to its new value.
        """
        ...

    def delete_branch(self, name: str, event: OutboxEvent) -> None: ...

    def write_commit(
        self, branch: str, expected_head: str, new: NewCommit, events: EventsFor
    ) -> CommitRecord:
        """Record ``new`` and move ``branch`` to it if its head is still ``expected_head``.

        Aborted (BRANCH_HEAD_MOVED) when another writer moved the head first.
        """
        ...

    def move_branch(
        self, branch: str, expected_head: str, new_head: str, events: EventsFor
    ) -> CommitRecord:
        """Fast-forward ``branch`` to an existing commit, with the same compare-and-swap."""
        ...

    def tag(self, name: str) -> TagRecord:
        """A tag by name; NotFound (TAG_NOT_FOUND) otherwise."""
        ...

    def find_tag(self, name: str) -> TagRecord | None: ...

    def tags(self, *, after: str, limit: int) -> list[TagRecord]: ...

    def create_tag(self, tag: TagRecord, event: OutboxEvent) -> TagRecord:
        """Insert the tag with its event; AlreadyExists (TAG_EXISTS) when the name is taken."""
        ...

    def delete_tag(self, name: str, event: OutboxEvent) -> TagRecord:
        """Remove the tag with its event; returns what it pointed to."""
        ...

    def record_events(self, events: Sequence[OutboxEvent]) -> None:
        """Write events that report no change of the ontology (e.g. a validation)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ProposalRecord:
    """A proposal as stored; whether it is approved is worked out on read, never stored."""

    id: str
    title: str
    description: str
    author: str
    source: str
    target: str
    reviewers: tuple[str, ...]
    state: str
    """OPEN, MERGED or CLOSED."""
    validated_rules: Mapping[str, bool | int | str]
    """The target's rules when it opened or was last revalidated (``oms.rules.BranchRules``)."""
    created_ns: int
    updated_ns: int
    etag: str
    merge_commit: str = ""
    merged_approvals: tuple[str, ...] = ()
    """Once merged: who approved the source head the merge took, as the merge counted them."""


@dataclass(frozen=True)
class ThreadEntry:
    """One entry of a proposal's thread: a comment or a review (APPROVE, REQUEST_CHANGES)."""

    kind: str
    author: str
    body: str
    source_head: str
    """The source head when written: what an approval approves."""
    admin: bool
    """Whether the author held ``*`` when writing it: the two-person rule counts admins."""
    time_ns: int
    number: int = 0
    """Its position in the thread from 1, assigned by the store."""


class ProposalStore(Protocol):
    """Proposals and their threads; every method is atomic."""

    def create_proposal(self, proposal: ProposalRecord, event: OutboxEvent) -> ProposalRecord: ...

    def proposal(self, proposal_id: str) -> ProposalRecord: ...

    def proposals(
        self, *, states: Sequence[str], target: str, before: str, limit: int
    ) -> list[ProposalRecord]:
        """Newest first (by id, which grows with time), those in ``states`` (all when empty)."""
        ...

    def update_proposal(
        self,
        proposal_id: str,
        expected_etag: str | None,
        updated: ProposalRecord,
        event: OutboxEvent,
        *,
        unless_state: str | None = None,
    ) -> ProposalRecord:
        """Replace the proposal if it is still as the caller read it.

        Its etag must be ``expected_etag`` (any when ``None``) and its state not
        ``unless_state``; ABORTED (``ETAG_MISMATCH``) when it changed meanwhile.
        """
        ...

    def add_entry(self, proposal_id: str, entry: ThreadEntry, event: OutboxEvent) -> ThreadEntry:
        """Append ``entry`` to the thread, numbered after the last one."""
        ...

    def entries(self, proposal_id: str, *, after: int, limit: int) -> list[ThreadEntry]: ...

    def reviews(self, proposal_id: str) -> list[ThreadEntry]:
        """The thread's APPROVE and REQUEST_CHANGES entries, in order."""
        ...
