"""The ontology store on SQLAlchemy Core: content-addressed blobs, commits and branch heads.

Everything but ``branches`` (and the outbox) is immutable once written, so reads need no
locks and blobs and commits are cached in memory by id. A commit writes its new blobs, its
row and its events, and moves the branch head by compare-and-swap, in one transaction: a
writer whose expected head is stale writes nothing and gets ABORTED.

Schema keys are stored in the spelling of the first releases (``objectTypes/X``): trees hash
their keys, so storing ``object-types/X`` would give every existing commit a new id. The store
translates at its edge (:func:`_stored`, :func:`_public`); the rest of the OMS sees only the
API's spelling.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from common import errors, times
from common.canonical import canonical_json
from common.db import Database, add_column, replace_column, rows_after
from common.errors import quoted
from common.lru import LruCache
from common.outbox import (
    OutboxEvent,
    append,
    append_all,
    outbox_table,
    outbox_times_in_nanoseconds,
    outbox_traceparent,
)
from oms.model import LEGACY_COLLECTIONS, Overlay, Resource, canonical_key, references
from oms.objects import LINKS, is_data_key
from oms.store import (
    MAIN,
    BranchEvent,
    BranchRecord,
    BranchSetting,
    CommitRecord,
    EventsFor,
    NewCommit,
    ProposalRecord,
    Snapshot,
    TagRecord,
    ThreadEntry,
)
from oms.tree import Tree, bucket_of, changed_entries, content_hash, group_by_bucket


class _Put(Protocol):
    """Stores a blob and returns its hash; ``text``: its canonical JSON, when known already."""

    def __call__(self, value: Any, text: str | None = None) -> str: ...


metadata = sa.MetaData()

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
"""Resources, buckets and roots by the SHA-256 of their canonical JSON; written once."""

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("parents", sa.Text, nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("force_reason", sa.Text, nullable=False, default=""),
    sa.Column("refs", sa.String(64), nullable=True),
    sa.Column("force_approved_by", sa.Text, nullable=False, server_default="[]"),
    sa.Column("data", sa.String(64), nullable=True),
)
"""``refs``: root of the snapshot's reverse-reference index, NULL for commits stored before it
existed (the next commit on top builds it whole, once). ``data``: root of its objects and
links, NULL while it has none."""

commit_parents = sa.Table(
    "commit_parents",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("parent", sa.String(64), nullable=False),
)
"""The parent edges again, as rows, so ancestry can be fetched in bulk with a recursive query."""

commit_changes = sa.Table(
    "commit_changes",
    metadata,
    sa.Column("commit_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("change", sa.String(16), nullable=False),
    sa.Index("ix_commit_changes_key", "key"),
)
"""Which resources each commit changed relative to its first parent: per-resource history."""

branches = sa.Table(
    "branches",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("head", sa.String(64), nullable=False),
    sa.Column("base_branch", sa.String(100), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False),
    sa.Column("compatibility_mode", sa.String(32), nullable=False),
    sa.Column("creator", sa.String(256), nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("requires_proposal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("required_approvals", sa.Integer, nullable=False, server_default="0"),
    sa.Column("allow_self_approval", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("compatibility_exemptions", sa.Text, nullable=False, server_default="[]"),
)
"""``compatibility_exemptions`` is a JSON list of rule ids."""

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("target", sa.String(100), nullable=False),
    sa.Column("reviewers", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("validated_rules", sa.Text, nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_ns", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("merge_commit", sa.String(64), nullable=False),
    sa.Column("merged_approvals", sa.Text, nullable=False, server_default="[]"),
    sa.Index("ix_proposals_target", "target", "id"),
)
"""``reviewers``, ``validated_rules`` and ``merged_approvals`` are JSON; the id grows with the
time it was opened."""

proposal_entries = sa.Table(
    "proposal_entries",
    metadata,
    sa.Column("proposal_id", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("source_head", sa.String(64), nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("time_ns", sa.BigInteger, nullable=False),
)
"""Each proposal's thread: comments and reviews, numbered from 1; written once."""

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("commit_id", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("creator", sa.String(256), nullable=False),
    sa.Column("created_ns", sa.BigInteger, nullable=False),
)
"""Named, immutable pointers to commits: rows are inserted and deleted, never updated."""

outbox = outbox_table(metadata)

EMPTY_TREE: Tree = {}

_BRANCH = sa.select(branches).where(branches.c.name == sa.bindparam("name"))
_BRANCH_LOCKED = _BRANCH.with_for_update()
_BRANCH_HEAD = sa.select(branches.c.head).where(branches.c.name == sa.bindparam("name"))
"""Built once: every read of a branch looks one up, and building the statement each time
costs more than running it."""

_ANCESTRY = sa.text(
    """
    WITH RECURSIVE ancestry(id, depth) AS (
        SELECT CAST(:start AS VARCHAR(64)), 0
        UNION
        SELECT p.parent, a.depth + 1
        FROM commit_parents p JOIN ancestry a ON p.child = a.id
        WHERE a.depth < :depth
    )
    SELECT DISTINCT id FROM ancestry
    """
)
_ANCESTRY_BATCH = 256
"""Commits fetched per query when an ancestry walk reaches one not yet cached."""
LOG_SCAN_LIMIT = 10_000
"""Commits one page of a filtered history may walk past; a page that reaches it ends early
(possibly empty) with a token to go on, so no request walks a whole long history at once."""


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)


def _create_tags(conn: Connection) -> None:
    """``tags`` for databases created before it (a new one has it from its first migration)."""
    tags.create(conn, checkfirst=True)


def _exemptions_and_transitive_modes(conn: Connection) -> None:
    """Per-branch rule exemptions, and room for ``BACKWARD_TRANSITIVE`` (19 characters)."""
    add_column(conn, "branches", "compatibility_exemptions", "TEXT NOT NULL DEFAULT '[]'")
    if conn.dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR's length
        conn.exec_driver_sql(
            "ALTER TABLE branches ALTER COLUMN compatibility_mode TYPE VARCHAR(32)"
        )


def _create_main(conn: Connection) -> None:
    """The first commit (an empty ontology) and the protected ``main`` branch pointing to it."""
    root_text = canonical_json(EMPTY_TREE)
    root = content_hash(root_text)
    now = times.now()
    commit_id = content_hash(canonical_json({"root": root, "parents": [], "time_ns": now}))
    conn.execute(blobs.insert().values(hash=root, body=root_text))
    conn.execute(
        commits.insert().values(
            id=commit_id,
            root=root,
            parents="[]",
            author="system",
            message="Initial commit",
            time_ns=now,
            generation=1,
            forced=False,
            force_reason="",
            refs=root,
        )
    )
    conn.execute(
        branches.insert().values(
            name=MAIN,
            head=commit_id,
            base_branch=MAIN,
            protected=True,
            compatibility_mode="BACKWARD",
            creator="system",
            created_ns=now,
        )
    )


def _add_reference_index(conn: Connection) -> None:
    """``commits.refs`` for databases created before it; new ones have it from the start."""
    add_column(conn, "commits", "refs", "VARCHAR(64)")


def _times_in_nanoseconds(conn: Connection) -> None:
    """Microseconds become nanoseconds (:mod:`common.times`); commit ids stay as they were."""
    replace_column(conn, "commits", "time_us", "time_ns", "time_us * 1000")
    replace_column(conn, "branches", "created_us", "created_ns", "created_us * 1000")
    outbox_times_in_nanoseconds(conn)


def _governance(conn: Connection) -> None:
    """Branch rules, the two-person rule's approvers of a commit, and the proposal tables.

    ``main`` asks for one approval by someone other than the author; it does not require
    proposals until an administrator turns that on (docs/oms.md says why).
    """
    columns = {
        "branches": (
            ("requires_proposal", "BOOLEAN NOT NULL DEFAULT FALSE"),
            ("required_approvals", "INTEGER NOT NULL DEFAULT 0"),
            ("allow_self_approval", "BOOLEAN NOT NULL DEFAULT TRUE"),
        ),
        "commits": (("force_approved_by", "TEXT NOT NULL DEFAULT '[]'"),),
    }
    for table, added in columns.items():
        for name, definition in added:
            add_column(conn, table, name, definition)
    metadata.create_all(conn, tables=[proposals, proposal_entries])
    conn.execute(
        branches.update()
        .where(branches.c.name == MAIN)
        .values(required_approvals=1, allow_self_approval=False)
    )


def _add_data(conn: Connection) -> None:
    """``commits.data`` (objects and links) for databases created before it."""
    add_column(conn, "commits", "data", "VARCHAR(64)")


def _add_merged_approvals(conn: Connection) -> None:
    """``proposals.merged_approvals``; proposals merged before it show none."""
    add_column(conn, "proposals", "merged_approvals", "TEXT NOT NULL DEFAULT '[]'")


MIGRATIONS = (
    _create_schema,
    _create_main,
    _add_reference_index,
    _times_in_nanoseconds,
    outbox_traceparent,
    _governance,
    _create_tags,
    _exemptions_and_transitive_modes,
    _add_data,
    _add_merged_approvals,
)


OBJECT_CHUNK = 512
"""Objects :meth:`SqlSnapshot.objects` reads from the blobs at once."""
OBJECT_INDEX_CAPACITY = 250_000
"""Objects the cached :class:`ObjectIndex` entries hold together: up to about 220 bytes each
(a key and its blob's hash), so some 55 MB. The newest index stays even if it is larger."""


@dataclasses.dataclass(frozen=True)
class ObjectIndex:
    """One version of an object type's objects: what scans and key-order pages read."""

    pks: list[str]
    """The primary keys, sorted."""
    hashes: dict[str, str]
    """Primary key -> the hash of the object's blob."""


class SqlSnapshot(Snapshot):
    """A lazily loaded ontology at one commit; see :class:`oms.store.Snapshot`.

    Keys iterate in sorted order. Resources are shared, not copied: callers must not mutate
    them.
    """

    def __init__(self, store: SqlStore, commit: CommitRecord) -> None:
        self.commit = commit
        self._store = store
        self._root: Tree | None = None
        self._buckets: dict[str, Tree] = {}
        self._resources: dict[str, Resource] = {}
        self._keys: list[str] | None = None
        self._refs_root: Tree | None = None
        self._data_root: Tree | None = None
        self._data_buckets: dict[tuple[str, str], Tree] = {}

    @property
    def root(self) -> Tree:
        if self._root is None:
            self._root = self._store.tree(self.commit.root)
        return self._root

    def bucket(self, bucket_id: str) -> Tree:
        tree = self._buckets.get(bucket_id)
        if tree is None:
            bucket_hash = self.root.get(bucket_id)
            tree = self._store.tree(bucket_hash) if bucket_hash else {}
            self._buckets[bucket_id] = tree
        return tree

    def load_buckets(self, bucket_ids: Iterable[str]) -> None:
        missing = {b: self.root[b] for b in bucket_ids if b not in self._buckets and b in self.root}
        trees = self._store.blobs(missing.values())
        for bucket_id, bucket_hash in missing.items():
            self._buckets[bucket_id] = trees[bucket_hash]

    @property
    def data_root(self) -> Tree:
        """Group (``objects/<Type>``, ``links/<linkType>``, ``~links/...``) -> group root."""
        if self._data_root is None:
            self._data_root = self._store.tree(self.commit.data) if self.commit.data else {}
        return self._data_root

    def group(self, name: str) -> Tree:
        """A group's root: bucket id -> bucket hash."""
        group_hash = self.data_root.get(name)
        return self._store.tree(group_hash) if group_hash else {}

    def load_data_buckets(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Load (group, bucket id) pairs in one read of the blobs."""
        hashes: dict[tuple[str, str], str] = {}
        for group, bucket_id in set(wanted) - self._data_buckets.keys():
            bucket_hash = self.group(group).get(bucket_id)
            if bucket_hash is None:
                self._data_buckets[group, bucket_id] = {}
            else:
                hashes[group, bucket_id] = bucket_hash
        trees = self._store.blobs(hashes.values())
        for place, bucket_hash in hashes.items():
            self._data_buckets[place] = trees[bucket_hash]

    def _data_bucket(self, group: str, bucket_id: str) -> Tree:
        found = self._data_buckets.get((group, bucket_id))
        if found is None:
            self.load_data_buckets([(group, bucket_id)])
            found = self._data_buckets[group, bucket_id]
        return found

    def object_keys(self, object_type: str) -> list[str]:
        return self._object_index(object_type).pks

    def objects(self, object_type: str, pks: Iterable[str]) -> Iterator[tuple[str, Resource]]:
        hashes = self._object_index(object_type).hashes
        remaining = iter(pks)
        while chunk := list(itertools.islice(remaining, OBJECT_CHUNK)):
            placed = [(pk, h) for pk in chunk if (h := hashes.get(pk)) is not None]
            found = self._store.blobs(h for _, h in placed)
            for pk, resource_hash in placed:
                yield pk, found[resource_hash]

    def _object_index(self, object_type: str) -> ObjectIndex:
        """Built once per version of the type (by its group's hash), shared by snapshots."""
        group = f"objects/{object_type}"
        group_hash = self.data_root.get(group)
        if group_hash is None:
            return ObjectIndex([], {})
        found = self._store.object_indexes.get(group_hash)
        if found is None:
            bucket_ids = list(self.group(group))
            self.load_data_buckets((group, b) for b in bucket_ids)
            hashes = {
                unquote(k): h for b in bucket_ids for k, h in self._data_buckets[group, b].items()
            }
            found = ObjectIndex(sorted(hashes), hashes)
            self._store.object_indexes.put(group_hash, found)
        return found

    def linked(self, link_type: str, pk: str, *, reverse: bool) -> list[str]:
        group = f"{REVERSE if reverse else ''}{LINKS}/{link_type}"
        prefix = quote(pk, safe="") + "/"
        bucket = self._data_bucket(group, _data_bucket_of(prefix))
        return sorted(unquote(k[len(prefix) :]) for k in bucket if k.startswith(prefix))

    def etag(self, key: str) -> str | None:
        if is_data_key(key):
            group, inner = _data_place(key)
            return self._data_bucket(group, _data_bucket_of(inner)).get(inner)
        stored = _stored(key)
        return self.bucket(bucket_of(stored)).get(stored)

    def prefetch(self, keys: Iterable[str]) -> None:
        wanted = [k for k in keys if k not in self._resources]
        data = [_data_place(k) for k in wanted if is_data_key(k)]
        self.load_data_buckets((group, _data_bucket_of(inner)) for group, inner in data)
        self.load_buckets(group_by_bucket(_stored(k) for k in wanted if not is_data_key(k)))
        hashes = {k: h for k in wanted if (h := self.etag(k)) is not None}
        resources = self._store.blobs(hashes.values())
        for key, resource_hash in hashes.items():
            self._resources[key] = resources[resource_hash]

    def referrers(self, key: str) -> frozenset[str] | None:
        if self.commit.refs is None:
            return None
        if self._refs_root is None:
            self._refs_root = self._store.tree(self.commit.refs)
        stored = _stored(key)
        bucket_hash = self._refs_root.get(bucket_of(stored))
        if bucket_hash is None:
            return frozenset()
        found = self._store.blobs([bucket_hash])[bucket_hash].get(stored, ())
        return frozenset(_public(k) for k in found)

    def __getitem__(self, key: str) -> Resource:
        resource = self._resources.get(key)
        if resource is None:
            resource_hash = self.etag(key)
            if resource_hash is None:
                raise KeyError(key)
            resource = self._store.blobs([resource_hash])[resource_hash]
            self._resources[key] = resource
        return resource

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.etag(key) is not None

    def keys_sorted(self) -> list[str]:
        if self._keys is None:
            self.load_buckets(self.root)
            self._keys = sorted(_public(k) for b in self.root for k in self._buckets[b])
        return self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_sorted())

    def __len__(self) -> int:
        return len(self.keys_sorted())

    def items(self) -> ItemsView[str, Resource]:
        self.prefetch(self.keys_sorted())
        return super().items()


class SqlStore:
    """:class:`oms.store.OntologyStore` on a :class:`common.db.Database`."""

    def __init__(self, db: Database, *, cache_entries: int = 50_000) -> None:
        self.db = db
        self._blobs: LruCache[Any] = LruCache(cache_entries)
        self._commits: LruCache[CommitRecord] = LruCache(cache_entries)
        self.object_indexes: LruCache[ObjectIndex] = LruCache(
            OBJECT_INDEX_CAPACITY, weigh=lambda index: len(index.pks)
        )
        """The objects of an object type's group, by the group's hash."""
        db.migrate(MIGRATIONS)
        self._insert_blobs = (
            blobs.insert().prefix_with("OR IGNORE")
            if db.is_sqlite
            else postgresql.insert(blobs).on_conflict_do_nothing(index_elements=["hash"])
        )
        """Blobs are content-addressed: one already stored is the same blob, skip it."""

    def close(self) -> None:
        self.db.dispose()

    # -- blobs and trees -------------------------------------------------------------------

    def blobs(self, hashes: Iterable[str]) -> dict[str, Any]:
        """Parsed blobs by hash, shared through the cache: callers must not mutate them."""
        found: dict[str, Any] = {}
        missing: list[str] = []
        for blob_hash in hashes:
            value = self._blobs.get(blob_hash)
            if value is None:
                missing.append(blob_hash)
            else:
                found[blob_hash] = value
        if not missing:
            return found
        with self.db.read() as conn:
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                for row in conn.execute(sa.select(blobs).where(blobs.c.hash.in_(chunk))):
                    value = json.loads(row.body)
                    self._blobs.put(row.hash, value)
                    found[row.hash] = value
        absent = set(missing) - found.keys()
        if absent:
            raise errors.Internal(f"missing blobs: {sorted(absent)[:3]}", reason="STORE_CORRUPT")
        return found

    def tree(self, tree_hash: str) -> Tree:
        tree: Tree = self.blobs([tree_hash])[tree_hash]
        return tree

    # -- commits ---------------------------------------------------------------------------

    @staticmethod
    def _record(row: Any) -> CommitRecord:
        return CommitRecord(
            id=row.id,
            root=row.root,
            parents=tuple(json.loads(row.parents)),
            author=row.author,
            message=row.message,
            time_ns=row.time_ns,
            generation=row.generation,
            forced=bool(row.forced),
            force_reason=row.force_reason,
            force_approved_by=tuple(json.loads(row.force_approved_by)),
            refs=row.refs,
            data=row.data,
        )

    def commit(self, commit_id: str) -> CommitRecord:
        """A commit by id; a miss fetches a batch of its ancestors too, as walks go on to them."""
        record: CommitRecord | None = self._commits.get(commit_id)
        if record is not None:
            return record
        with self.db.read() as conn:
            ids = [
                r.id
                for r in conn.execute(_ANCESTRY, {"start": commit_id, "depth": _ANCESTRY_BATCH})
            ]
            missing = [i for i in ids if self._commits.get(i) is None]
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                for row in conn.execute(sa.select(commits).where(commits.c.id.in_(chunk))):
                    self._commits.put(row.id, self._record(row))
        record = self._commits.get(commit_id)
        if not isinstance(record, CommitRecord):
            raise errors.NotFound(
                f"commit {quoted(commit_id)} not found",
                reason="COMMIT_NOT_FOUND",
                metadata={"ref": commit_id},
            )
        return record

    def commit_ids(self, prefix: str, *, limit: int) -> list[str]:
        """A range scan of the primary key between ``prefix`` padded with 0s and with fs.

        Ids are 64 lowercase hex digits, so the range holds exactly those starting with
        ``prefix`` whatever the column's collation (which could reorder punctuation).
        """
        pad = 64 - len(prefix)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(commits.c.id)
                .where(commits.c.id >= prefix + "0" * pad, commits.c.id <= prefix + "f" * pad)
                .order_by(commits.c.id)
                .limit(limit)
            ).all()
        return [r.id for r in rows]

    def snapshot(self, commit_id: str) -> SqlSnapshot:
        return SqlSnapshot(self, self.commit(commit_id))

    def changed_keys(self, old_commit: str, new_commit: str) -> set[str]:
        old = self.snapshot(old_commit)
        new = self.snapshot(new_commit)
        buckets = changed_entries(old.root, new.root)
        old.load_buckets(buckets)
        new.load_buckets(buckets)
        keys: set[str] = set()
        for bucket_id in buckets:
            keys |= {
                _public(k) for k in changed_entries(old.bucket(bucket_id), new.bucket(bucket_id))
            }
        for group in changed_entries(old.data_root, new.data_root):
            if group.startswith(REVERSE):
                continue
            old_group, new_group = old.group(group), new.group(group)
            bucket_ids = changed_entries(old_group, new_group)
            old.load_data_buckets((group, b) for b in bucket_ids)
            new.load_data_buckets((group, b) for b in bucket_ids)
            for bucket_id in bucket_ids:
                inner = changed_entries(
                    old._data_bucket(group, bucket_id), new._data_bucket(group, bucket_id)
                )
                keys |= {f"{group}/{k}" for k in inner}
        return keys

    def changes_in(self, commit_id: str, *, limit: int) -> tuple[list[tuple[str, str]], int]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(commit_changes.c.key, commit_changes.c.change)
                .where(commit_changes.c.commit_id == commit_id)
                .order_by(commit_changes.c.key)
                .limit(limit + 1)
            ).all()
            total = len(rows)
            if total > limit:
                total = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(commit_changes)
                    .where(commit_changes.c.commit_id == commit_id)
                ).scalar_one()
        return [(_public(r.key), r.change) for r in rows[:limit]], total

    def merge_base(self, a: str, b: str) -> str | None:
        """Walk both ancestries highest generation first; the first commit both reach wins.

        A commit's children all have higher generations, so when it is popped every path to it
        has been seen: its flags are final, and the first one carrying both is the nearest.
        """
        if a == b:
            return a
        flags = {a: 1, b: 2}
        heap = [(-self.commit(a).generation, a), (-self.commit(b).generation, b)]
        heapq.heapify(heap)
        done: set[str] = set()
        while heap:
            _, commit_id = heapq.heappop(heap)
            if commit_id in done:
                continue
            done.add(commit_id)
            flag = flags[commit_id]
            if flag == 3:
                return commit_id
            for parent in self.commit(commit_id).parents:
                flags[parent] = flags.get(parent, 0) | flag
                heapq.heappush(heap, (-self.commit(parent).generation, parent))
        return None

    def log(
        self, frontier: Sequence[str], *, resource: str | None, limit: int
    ) -> tuple[list[CommitRecord], list[str]]:
        wanted: set[str] | None = None
        oldest = 0
        if resource is not None:
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(commit_changes.c.commit_id, commits.c.generation)
                    .join(commits, commits.c.id == commit_changes.c.commit_id)
                    .where(commit_changes.c.key == _stored(resource))
                ).all()
            if not rows:
                return [], []
            wanted = {r.commit_id for r in rows}
            oldest = min(r.generation for r in rows)
        heap = [(-self.commit(c).generation, c) for c in set(frontier)]
        heapq.heapify(heap)
        found: list[CommitRecord] = []
        walked = 0
        while heap and len(found) < limit and walked < max(limit, LOG_SCAN_LIMIT):
            if -heap[0][0] < oldest:
                return found, []
            walked += 1
            _, commit_id = heapq.heappop(heap)
            while heap and heap[0][1] == commit_id:
                heapq.heappop(heap)
            record = self.commit(commit_id)
            for parent in record.parents:
                heapq.heappush(heap, (-self.commit(parent).generation, parent))
            if wanted is None or commit_id in wanted:
                found.append(record)
        if not heap or -heap[0][0] < oldest:
            return found, []
        return found, sorted({c for _, c in heap})

    # -- branches --------------------------------------------------------------------------

    @staticmethod
    def _branch(row: Any) -> BranchRecord:
        return BranchRecord(
            name=row.name,
            head=row.head,
            base_branch=row.base_branch,
            protected=bool(row.protected),
            compatibility_mode=row.compatibility_mode,
            creator=row.creator,
            created_ns=row.created_ns,
            requires_proposal=bool(row.requires_proposal),
            required_approvals=row.required_approvals,
            allow_self_approval=bool(row.allow_self_approval),
            compatibility_exemptions=tuple(json.loads(row.compatibility_exemptions)),
        )

    def branch(self, name: str) -> BranchRecord:
        with self.db.read() as conn:
            row = conn.execute(_BRANCH, {"name": name}).first()
        if row is None:
            raise errors.NotFound(
                f"branch {quoted(name)} not found",
                reason="BRANCH_NOT_FOUND",
                metadata={"branch": name},
            )
        return self._branch(row)

    def branches(self, *, after: str, limit: int) -> list[BranchRecord]:
        with self.db.read() as conn:
            rows = conn.execute(rows_after(branches.c.name, after, limit)).all()
        return [self._branch(r) for r in rows]

    def create_branch(self, branch: BranchRecord, event: OutboxEvent) -> BranchRecord:
        """Insert the branch; the primary key settles a race between two creators."""
        self.commit(branch.head)
        try:
            with self.db.write() as conn:
                conn.execute(
                    branches.insert().values(
                        name=branch.name,
                        head=branch.head,
                        base_branch=branch.base_branch,
                        protected=branch.protected,
                        compatibility_mode=branch.compatibility_mode,
                        creator=branch.creator,
                        created_ns=branch.created_ns,
                        requires_proposal=branch.requires_proposal,
                        required_approvals=branch.required_approvals,
                        allow_self_approval=branch.allow_self_approval,
                        compatibility_exemptions=json.dumps(list(branch.compatibility_exemptions)),
                    )
                )
                append(conn, outbox, event)
        except sa.exc.IntegrityError as exc:
            raise errors.AlreadyExists(
                f"branch {quoted(branch.name)} already exists",
                reason="BRANCH_EXISTS",
                metadata={"branch": branch.name},
            ) from exc
        return branch

    def update_branch(
        self, name: str, event: BranchEvent, settings: Mapping[str, BranchSetting]
    ) -> BranchRecord:
        columns = {
            k: json.dumps(list(v)) if isinstance(v, tuple) else v for k, v in settings.items()
        }
        with self.db.write() as conn:
            before = self._locked_branch(conn, name)
            if columns:
                conn.execute(branches.update().where(branches.c.name == name).values(**columns))
            after = self._locked_branch(conn, name)
            append(conn, outbox, event(before, after))
        return after

    def _locked_branch(self, conn: Connection, name: str) -> BranchRecord:
        """The branch, held against other writers until the transaction ends."""
        row = conn.execute(_BRANCH_LOCKED, {"name": name}).first()
        if row is None:
            raise errors.NotFound(
                f"branch {quoted(name)} not found",
                reason="BRANCH_NOT_FOUND",
                metadata={"branch": name},
            )
        return self._branch(row)

    def delete_branch(self, name: str, event: OutboxEvent) -> None:
        with self.db.write() as conn:
            deleted = conn.execute(
                branches.delete().where(branches.c.name == name, branches.c.protected.is_(False))
            ).rowcount
            if deleted == 0:
                self.branch(name)
                raise errors.FailedPrecondition(
                    f"branch {quoted(name)} is protected", reason="BRANCH_PROTECTED"
                )
            append(conn, outbox, event)

    # -- tags ------------------------------------------------------------------------------

    @staticmethod
    def _tag(row: Any) -> TagRecord:
        return TagRecord(
            name=row.name,
            commit=row.commit_id,
            message=row.message,
            creator=row.creator,
            created_ns=row.created_ns,
        )

    def find_tag(self, name: str) -> TagRecord | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(tags).where(tags.c.name == name)).first()
        return None if row is None else self._tag(row)

    def tag(self, name: str) -> TagRecord:
        found = self.find_tag(name)
        if found is None:
            raise _tag_not_found(name)
        return found

    def tags(self, *, after: str, limit: int) -> list[TagRecord]:
        with self.db.read() as conn:
            rows = conn.execute(rows_after(tags.c.name, after, limit)).all()
        return [self._tag(r) for r in rows]

    def create_tag(self, tag: TagRecord, event: OutboxEvent) -> TagRecord:
        """Insert the tag; the primary key settles a race between two creators."""
        self.commit(tag.commit)
        try:
            with self.db.write() as conn:
                conn.execute(
                    tags.insert().values(
                        name=tag.name,
                        commit_id=tag.commit,
                        message=tag.message,
                        creator=tag.creator,
                        created_ns=tag.created_ns,
                    )
                )
                append(conn, outbox, event)
        except sa.exc.IntegrityError as exc:
            raise errors.AlreadyExists(
                f"tag {quoted(tag.name)} already exists",
                reason="TAG_EXISTS",
                metadata={"tag": tag.name},
            ) from exc
        return tag

    def delete_tag(self, name: str, event: OutboxEvent) -> TagRecord:
        with self.db.write() as conn:
            row = conn.execute(sa.select(tags).where(tags.c.name == name)).first()
            if row is None:
                raise _tag_not_found(name)
            conn.execute(tags.delete().where(tags.c.name == name))
            append(conn, outbox, event)
        return self._tag(row)

    # -- writing ---------------------------------------------------------------------------

    def write_commit(
        self, branch: str, expected_head: str, new: NewCommit, events: EventsFor
    ) -> CommitRecord:
        record, written, changes = self._prepare(new)
        with self.db.write() as conn:
            conn.execute(
                self._insert_blobs, [{"hash": h, "body": text} for h, (text, _) in written.items()]
            )
            conn.execute(
                commits.insert(),
                {
                    "id": record.id,
                    "root": record.root,
                    "parents": json.dumps(list(record.parents)),
                    "author": record.author,
                    "message": record.message,
                    "time_ns": record.time_ns,
                    "generation": record.generation,
                    "forced": record.forced,
                    "force_reason": record.force_reason,
                    "refs": record.refs,
                    "force_approved_by": json.dumps(list(record.force_approved_by)),
                    "data": record.data,
                },
            )
            conn.execute(
                commit_parents.insert(),
                [
                    {"child": record.id, "position": i, "parent": p}
                    for i, p in enumerate(record.parents)
                ],
            )
            if changes:
                conn.execute(
                    commit_changes.insert(),
                    [{"commit_id": record.id, "key": k, "change": c} for k, c in changes],
                )
            self._swap_head(conn, branch, expected_head, record.id)
            append_all(conn, outbox, events(record))
        for blob_hash, (_, value) in written.items():
            self._blobs.put(blob_hash, value)
        self._commits.put(record.id, record)
        return record

    def _prepare(
        self, new: NewCommit
    ) -> tuple[CommitRecord, dict[str, tuple[str, Any]], list[tuple[str, str]]]:
        """The commit, its new blobs (hash -> (text, value)) and its changes (stored keys).

        Only the buckets holding changed keys are read and rewritten, plus the root; the same
        goes for the reverse-reference index.
        """
        parent = self.snapshot(new.parents[0])
        root = dict(parent.root)
        written: dict[str, tuple[str, Any]] = {}
        changes: list[tuple[str, str]] = []

        def put(value: Any, text: str | None = None) -> str:
            text = canonical_json(value) if text is None else text
            blob_hash = content_hash(text)
            written[blob_hash] = (text, value)
            return blob_hash

        schema = {k: v for k, v in new.changes.items() if not is_data_key(k)}
        data = {k: v for k, v in new.changes.items() if is_data_key(k)}
        touched = group_by_bucket(_stored(k) for k in schema)
        parent.load_buckets(touched)
        for bucket_id, keys in touched.items():
            bucket = dict(parent.bucket(bucket_id))
            for key in keys:
                before = bucket.pop(key, None)
                resource = new.changes[_public(key)]
                after = None if resource is None else put(resource, new.texts.get(_public(key)))
                if after is not None:
                    bucket[key] = after
                if before != after:
                    kind = "ADDED" if before is None else "DELETED" if after is None else "MODIFIED"
                    changes.append((key, kind))
            if bucket:
                root[bucket_id] = put(bucket)
            else:
                root.pop(bucket_id, None)
        root_hash = put(root)
        refs_hash = self._reference_index(parent, schema, put)
        data_hash = (
            self._data_tree(parent, data, new.texts, put, changes) if data else parent.commit.data
        )
        now = times.now()
        fields = {
            "root": root_hash,
            "parents": list(new.parents),
            "author": new.author,
            "message": new.message,
            "time_ns": now,
            "forced": new.forced,
            "force_reason": new.force_reason,
        }
        if new.force_approved_by:
            fields["force_approved_by"] = list(new.force_approved_by)
        if data_hash is not None:
            fields["data"] = data_hash
        record = CommitRecord(
            id=content_hash(canonical_json(fields)),
            root=root_hash,
            parents=new.parents,
            author=new.author,
            message=new.message,
            time_ns=now,
            generation=1 + max(self.commit(p).generation for p in new.parents),
            forced=new.forced,
            force_reason=new.force_reason,
            force_approved_by=new.force_approved_by,
            refs=refs_hash,
            data=data_hash,
        )
        return record, written, changes

    def _data_tree(
        self,
        parent: SqlSnapshot,
        data: Mapping[str, Resource | None],
        texts: Mapping[str, str],
        put: _Put,
        changes: list[tuple[str, str]],
    ) -> str:
        """The root of the objects and links after ``data``, from the parent's.

        Appends the changes it makes to ``changes``; ``texts`` holds values encoded already.

        Three levels, as the schema tree with one more: the root maps groups (one per object
        type and per link type) to group roots, which map 256 buckets (by hash of the first
        primary key) to buckets mapping keys to blobs. Only the touched buckets of the touched
        groups are rewritten, and listing one type reads that type's group alone. Each link
        is also kept under its ``to`` end (``~links/...``), so both ends find theirs in one
        bucket.
        """
        edits: dict[str, dict[str, str | None]] = {}
        for key, value in data.items():
            group, inner = _data_place(key)
            blob = None if value is None else put(value, texts.get(key))
            edits.setdefault(group, {})[inner] = blob
            if group.startswith(LINKS + "/"):
                from_pk, _, to_pk = inner.partition("/")
                edits.setdefault(REVERSE + group, {})[f"{to_pk}/{from_pk}"] = blob
        root = dict(parent.data_root)
        for group, entries in edits.items():
            group_root = dict(parent.group(group))
            by_bucket: dict[str, list[str]] = {}
            for inner in entries:
                by_bucket.setdefault(_data_bucket_of(inner), []).append(inner)
            found = self.blobs(group_root[b] for b in by_bucket if b in group_root)
            for bucket_id, inners in by_bucket.items():
                bucket = dict(found[group_root[bucket_id]]) if bucket_id in group_root else {}
                for inner in inners:
                    before, after = bucket.pop(inner, None), entries[inner]
                    if after is not None:
                        bucket[inner] = after
                    if before != after and not group.startswith(REVERSE):
                        kind = (
                            "ADDED"
                            if before is None
                            else "DELETED"
                            if after is None
                            else "MODIFIED"
                        )
                        changes.append((f"{group}/{inner}", kind))
                if bucket:
                    group_root[bucket_id] = put(bucket)
                else:
                    group_root.pop(bucket_id, None)
            if group_root:
                root[group] = put(group_root)
            else:
                root.pop(group, None)
        return put(root)

    def _reference_index(
        self,
        parent: SqlSnapshot,
        changes: Mapping[str, Resource | None],
        put: Callable[[Any], str],
    ) -> str:
        """The root of the reverse-reference index after ``changes``, from the parent's.

        Like the snapshot tree: a root maps buckets (by hash of the target key) to buckets
        mapping target keys to their sorted referrer keys. Only the old and new versions of
        the changed resources are read; a parent stored before the index existed gets it
        built whole from the new snapshot, once.
        """
        edits: dict[str, tuple[set[str], set[str]]] = {}
        if parent.commit.refs is None:
            root: Tree = {}
            after = Overlay(parent, changes)
            keys = list(after)
            after.prefetch(keys)
            edits = {_stored(key): (set(), _targets(key, after[key])) for key in keys}
        else:
            root = dict(self.tree(parent.commit.refs))
            parent.prefetch(changes)
            edits = {
                _stored(key): (_targets(key, parent.get(key)), _targets(key, resource))
                for key, resource in changes.items()
            }
        delta: dict[str, dict[str, bool]] = {}
        for key, (old, new) in edits.items():
            for target in old - new:
                delta.setdefault(target, {})[key] = False
            for target in new - old:
                delta.setdefault(target, {})[key] = True
        touched = group_by_bucket(delta)
        found = self.blobs(root[b] for b in touched if b in root)
        for bucket_id, targets in touched.items():
            bucket = dict(found[root[bucket_id]]) if bucket_id in root else {}
            for target in targets:
                refs = set(bucket.get(target, ()))
                for referrer, present in delta[target].items():
                    if present:
                        refs.add(referrer)
                    else:
                        refs.discard(referrer)
                if refs:
                    bucket[target] = sorted(refs)
                else:
                    bucket.pop(target, None)
            if bucket:
                root[bucket_id] = put(bucket)
            else:
                root.pop(bucket_id, None)
        return put(root)

    def move_branch(
        self, branch: str, expected_head: str, new_head: str, events: EventsFor
    ) -> CommitRecord:
        record = self.commit(new_head)
        with self.db.write() as conn:
            self._swap_head(conn, branch, expected_head, new_head)
            for event in events(record):
                append(conn, outbox, event)
        return record

    @staticmethod
    def _swap_head(conn: Connection, branch: str, expected: str, new: str) -> None:
        moved = conn.execute(
            branches.update()
            .where(branches.c.name == branch, branches.c.head == expected)
            .values(head=new)
        ).rowcount
        if moved == 1:
            return
        current = conn.execute(sa.select(branches.c.head).where(branches.c.name == branch)).scalar()
        if current is None:
            raise errors.NotFound(
                f"branch {quoted(branch)} not found",
                reason="BRANCH_NOT_FOUND",
                metadata={"branch": branch},
            )
        raise errors.Aborted(
            f"branch {quoted(branch)} moved to {current} while this change was prepared; retry",
            reason="BRANCH_HEAD_MOVED",
            metadata={"branch": branch, "expected_head": expected, "head": current},
        )

    def record_events(self, events: Sequence[OutboxEvent]) -> None:
        with self.db.write() as conn:
            for event in events:
                append(conn, outbox, event)

    # -- proposals -------------------------------------------------------------------------

    @staticmethod
    def _proposal(row: Any) -> ProposalRecord:
        return ProposalRecord(
            id=row.id,
            title=row.title,
            description=row.description,
            author=row.author,
            source=row.source,
            target=row.target,
            reviewers=tuple(json.loads(row.reviewers)),
            state=row.state,
            validated_rules=json.loads(row.validated_rules),
            created_ns=row.created_ns,
            updated_ns=row.updated_ns,
            etag=row.etag,
            merge_commit=row.merge_commit,
            merged_approvals=tuple(json.loads(row.merged_approvals)),
        )

    @staticmethod
    def _proposal_row(proposal: ProposalRecord) -> dict[str, Any]:
        return {
            "id": proposal.id,
            "title": proposal.title,
            "description": proposal.description,
            "author": proposal.author,
            "source": proposal.source,
            "target": proposal.target,
            "reviewers": json.dumps(list(proposal.reviewers)),
            "state": proposal.state,
            "validated_rules": canonical_json(dict(proposal.validated_rules)),
            "created_ns": proposal.created_ns,
            "updated_ns": proposal.updated_ns,
            "etag": proposal.etag,
            "merge_commit": proposal.merge_commit,
            "merged_approvals": json.dumps(list(proposal.merged_approvals)),
        }

    def create_proposal(self, proposal: ProposalRecord, event: OutboxEvent) -> ProposalRecord:
        with self.db.write() as conn:
            conn.execute(proposals.insert().values(**self._proposal_row(proposal)))
            append(conn, outbox, event)
        return proposal

    def proposal(self, proposal_id: str) -> ProposalRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(proposals).where(proposals.c.id == proposal_id)).first()
        if row is None:
            raise errors.NotFound(
                f"proposal {quoted(proposal_id)} not found",
                reason="PROPOSAL_NOT_FOUND",
                metadata={"proposal": proposal_id},
            )
        return self._proposal(row)

    def proposals(
        self, *, states: Sequence[str], target: str, before: str, limit: int
    ) -> list[ProposalRecord]:
        query = sa.select(proposals).order_by(proposals.c.id.desc()).limit(limit)
        if states:
            query = query.where(proposals.c.state.in_(states))
        if target:
            query = query.where(proposals.c.target == target)
        if before:
            query = query.where(proposals.c.id < before)
        with self.db.read() as conn:
            return [self._proposal(r) for r in conn.execute(query)]

    def update_proposal(
        self,
        proposal_id: str,
        expected_etag: str | None,
        updated: ProposalRecord,
        event: OutboxEvent,
        *,
        unless_state: str | None = None,
    ) -> ProposalRecord:
        statement = proposals.update().where(proposals.c.id == proposal_id)
        if expected_etag is not None:
            statement = statement.where(proposals.c.etag == expected_etag)
        if unless_state is not None:
            statement = statement.where(proposals.c.state != unless_state)
        with self.db.write() as conn:
            changed = conn.execute(statement.values(**self._proposal_row(updated))).rowcount
            if changed != 1:
                current = self.proposal(proposal_id)
                stale = "" if expected_etag is None else f" (etag {quoted(expected_etag)} is stale)"
                raise errors.Aborted(
                    f"proposal {quoted(proposal_id)} changed meanwhile{stale}",
                    reason="ETAG_MISMATCH",
                    metadata={"proposal": proposal_id, "etag": current.etag},
                )
            append(conn, outbox, event)
        return updated

    def add_entry(self, proposal_id: str, entry: ThreadEntry, event: OutboxEvent) -> ThreadEntry:
        """Numbered after the last entry; the primary key settles a race, the loser retries."""
        try:
            with self.db.write() as conn:
                last = conn.execute(
                    sa.select(sa.func.max(proposal_entries.c.number)).where(
                        proposal_entries.c.proposal_id == proposal_id
                    )
                ).scalar()
                numbered = dataclasses.replace(entry, number=(last or 0) + 1)
                conn.execute(
                    proposal_entries.insert().values(
                        proposal_id=proposal_id,
                        number=numbered.number,
                        kind=numbered.kind,
                        author=numbered.author,
                        body=numbered.body,
                        source_head=numbered.source_head,
                        admin=numbered.admin,
                        time_ns=numbered.time_ns,
                    )
                )
                append(conn, outbox, event)
        except sa.exc.IntegrityError as exc:
            raise errors.Aborted(
                f"another entry was added to proposal {quoted(proposal_id)} meanwhile; retry",
                reason="CONCURRENT_ENTRY",
                metadata={"proposal": proposal_id},
            ) from exc
        return numbered

    @staticmethod
    def _entry(row: Any) -> ThreadEntry:
        return ThreadEntry(
            kind=row.kind,
            author=row.author,
            body=row.body,
            source_head=row.source_head,
            admin=bool(row.admin),
            time_ns=row.time_ns,
            number=row.number,
        )

    def entries(self, proposal_id: str, *, after: int, limit: int) -> list[ThreadEntry]:
        query = rows_after(proposal_entries.c.number, after, limit).where(
            proposal_entries.c.proposal_id == proposal_id
        )
        with self.db.read() as conn:
            return [self._entry(r) for r in conn.execute(query)]

    def reviews(self, proposal_id: str) -> list[ThreadEntry]:
        query = (
            sa.select(proposal_entries)
            .where(
                proposal_entries.c.proposal_id == proposal_id,
                proposal_entries.c.kind.in_(("APPROVE", "REQUEST_CHANGES")),
            )
            .order_by(proposal_entries.c.number)
        )
        with self.db.read() as conn:
            return [self._entry(r) for r in conn.execute(query)]


REVERSE = "~"
"""Prefix of the groups that hold each link again under its ``to`` end."""

_STORED_COLLECTIONS = {current: legacy for legacy, current in LEGACY_COLLECTIONS.items()}

_public = canonical_key
"""A stored key as the API spells it (data keys and ``interfaces/...`` are spelt alike)."""


def _stored(key: str) -> str:
    """A key as the store hashes and records it; the inverse of :func:`_public`."""
    collection, sep, rest = key.partition("/")
    legacy = _STORED_COLLECTIONS.get(collection)
    return f"{legacy}/{rest}" if legacy and sep else key


def _data_place(key: str) -> tuple[str, str]:
    """``objects/Employee/e1`` -> ``("objects/Employee", "e1")``; links keep ``from/to``."""
    kind, _, rest = key.partition("/")
    name, _, inner = rest.partition("/")
    return f"{kind}/{name}", inner


def _data_bucket_of(inner: str) -> str:
    """The bucket of a key within its group: by its first (encoded) primary key."""
    return bucket_of(inner.partition("/")[0])


def _tag_not_found(name: str) -> errors.NotFound:
    return errors.NotFound(
        f"tag {quoted(name)} not found", reason="TAG_NOT_FOUND", metadata={"tag": name}
    )


def _targets(key: str, resource: Resource | None) -> set[str]:
    """The stored keys a resource refers to (none when absent or malformed)."""
    if not isinstance(resource, dict):
        return set()
    return {_stored(target) for target, _ in references(key.partition("/")[0], resource)}
