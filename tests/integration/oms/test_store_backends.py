"""The store's own guarantees on SQLite and PostgreSQL.

Snapshots, compare-and-swap heads, ancestry, history, and a restart that keeps everything.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from common import errors
from common.canonical import canonical_json
from common.db import Database
from common.outbox import OutboxEvent
from oms import sql_store
from oms.model import references
from oms.sql_store import SqlStore, blobs
from oms.store import MAIN, BranchRecord, NewCommit, TagRecord
from oms.tree import bucket_of, content_hash
from tests.support.ontology import company
from tests.support.postgres import scratch_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oms.db'}"
        return
    with scratch_database("oms") as url:
        yield url


def _write(store, branch, head, changes, message="change", parents=None):
    new = NewCommit(parents=parents or (head,), changes=changes, author="tester", message=message)
    return store.write_commit(branch, head, new, lambda _commit: [])


def test_snapshots_commits_and_history(url):
    store = SqlStore(Database(url))
    try:
        root = store.branch(MAIN).head
        one = _write(store, MAIN, root, {"object-types/A": {"api_name": "A"}}, "add A")
        two = _write(
            store,
            MAIN,
            one.id,
            {"object-types/A": None, "object-types/B": {"api_name": "B"}},
            "swap",
        )
        assert dict(store.snapshot(two.id).items()) == {"object-types/B": {"api_name": "B"}}
        assert dict(store.snapshot(one.id).items()) == {"object-types/A": {"api_name": "A"}}
        assert store.changed_keys(one.id, two.id) == {"object-types/A", "object-types/B"}
        assert store.changes_in(two.id, limit=10) == (
            [("object-types/A", "DELETED"), ("object-types/B", "ADDED")],
            2,
        )
        assert store.changes_in(two.id, limit=1) == ([("object-types/A", "DELETED")], 2)
        assert store.merge_base(two.id, one.id) == one.id
        found, rest = store.log([two.id], resource="object-types/A", limit=10)
        assert [c.message for c in found] == ["swap", "add A"] and rest == []
        with pytest.raises(errors.Aborted):
            _write(store, MAIN, one.id, {"object-types/C": {"api_name": "C"}})
        assert store.branch(MAIN).head == two.id
    finally:
        store.close()
    reopened = SqlStore(Database(url))
    try:
        assert reopened.branch(MAIN).head == two.id
        assert reopened.snapshot(two.id)["object-types/B"] == {"api_name": "B"}
    finally:
        reopened.close()


def test_compare_and_swap_lets_exactly_one_racing_writer_win(url):
    store = SqlStore(Database(url))
    try:
        head = store.branch(MAIN).head
        barrier = threading.Barrier(6, timeout=30)
        results = []

        def race(i):
            barrier.wait()
            try:
                _write(store, MAIN, head, {f"object-types/T{i}": {"api_name": f"T{i}"}})
                results.append("ok")
            except errors.Aborted as error:
                results.append(error.reason)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results) == ["BRANCH_HEAD_MOVED"] * 5 + ["ok"]
        assert len(store.snapshot(store.branch(MAIN).head)) == 1
    finally:
        store.close()


def test_merge_base_of_diverged_branches(url):
    store = SqlStore(Database(url))
    try:
        root = store.branch(MAIN).head
        base = _write(store, MAIN, root, {"object-types/A": {"api_name": "A"}})
        left = _write(store, MAIN, base.id, {"object-types/L": {"api_name": "L"}})
        right = NewCommit(
            parents=(base.id,),
            changes={"object-types/R": {"api_name": "R"}},
            author="tester",
            message="right",
        )
        store.create_branch(
            BranchRecord(
                name="side",
                head=base.id,
                base_branch=MAIN,
                protected=False,
                compatibility_mode="BACKWARD",
                creator="tester",
                created_ns=base.time_ns,
            ),
            OutboxEvent(type="oms.branch.created", subject="branches/side", actor="tester"),
        )
        side = store.write_commit("side", base.id, right, lambda _c: [])
        assert store.merge_base(left.id, side.id) == base.id
        merge = _write(
            store, MAIN, left.id, {"object-types/R": {"api_name": "R"}}, parents=(left.id, side.id)
        )
        assert store.merge_base(merge.id, side.id) == side.id
        found, _ = store.log([merge.id], resource=None, limit=10)
        assert found[0].id == merge.id
        assert [c.generation for c in found] == sorted((c.generation for c in found), reverse=True)
        assert [c.id for c in found].count(base.id) == 1
        assert {c.id for c in found} == {merge.id, left.id, side.id, base.id, root}
    finally:
        store.close()


def _blob_count(store):
    with store.db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(blobs)).scalar()


def test_a_commit_writes_blobs_for_its_change_only(url):
    store = SqlStore(Database(url))
    try:
        head = store.branch(MAIN).head
        many = {f"object-types/T{i}": {"api_name": f"T{i}"} for i in range(2000)}
        head = _write(store, MAIN, head, many).id
        before = _blob_count(store)
        one = _write(store, MAIN, head, {"object-types/T7": {"api_name": "T7", "x": 1}})
        assert _blob_count(store) - before == 3
        assert store.changes_in(one.id, limit=10) == ([("object-types/T7", "MODIFIED")], 1)
        same = _write(store, MAIN, one.id, {"object-types/T7": {"api_name": "T7", "x": 1}})
        assert _blob_count(store) - before == 3
        assert store.changes_in(same.id, limit=10) == ([], 0)
        assert same.root == one.root
    finally:
        store.close()


def test_racing_branch_creators_get_already_exists(url):
    store = SqlStore(Database(url))
    try:
        head = store.branch(MAIN).head
        barrier = threading.Barrier(4, timeout=30)
        results = []

        def create():
            record = BranchRecord(
                name="same",
                head=head,
                base_branch=MAIN,
                protected=False,
                compatibility_mode="BACKWARD",
                creator="tester",
                created_ns=store.commit(head).time_ns,
            )
            event = OutboxEvent(type="oms.branch.created", subject="branches/same", actor="t")
            barrier.wait()
            try:
                store.create_branch(record, event)
                results.append("ok")
            except errors.AlreadyExists:
                results.append("exists")

        threads = [threading.Thread(target=create) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results) == ["exists", "exists", "exists", "ok"]
    finally:
        store.close()


def _referrers_by_scan(snapshot):
    """Who refers to what, found the slow way: by reading every resource."""
    out = {}
    for key, resource in snapshot.items():
        for target, _ in references(key.split("/")[0], resource):
            out.setdefault(target, set()).add(key)
    return out


def _assert_index_matches_a_scan(snapshot):
    expected = _referrers_by_scan(snapshot)
    for key in set(expected) | set(snapshot):
        assert snapshot.referrers(key) == frozenset(expected.get(key, ())), key


def test_the_reverse_reference_index_follows_every_commit(url):
    store = SqlStore(Database(url))
    try:
        ontology = company()
        head = _write(store, MAIN, store.branch(MAIN).head, ontology)
        _assert_index_matches_a_scan(store.snapshot(head.id))
        assert store.snapshot(head.id).referrers("object-types/Office") == {
            "action-types/hire",
            "action-types/relocate",
            "link-types/worksIn",
        }
        moved = {**ontology["link-types/worksIn"], "to_object_type": "Employee"}
        head = _write(
            store, MAIN, head.id, {"link-types/worksIn": moved, "action-types/hire": None}
        )
        snapshot = store.snapshot(head.id)
        _assert_index_matches_a_scan(snapshot)
        assert snapshot.referrers("object-types/Office") == {"action-types/relocate"}
        assert "link-types/worksIn" in snapshot.referrers("object-types/Employee")
        head = _write(store, MAIN, head.id, {"action-types/relocate": None})
        assert store.snapshot(head.id).referrers("object-types/Office") == frozenset()
        _assert_index_matches_a_scan(store.snapshot(head.id))
    finally:
        store.close()


def test_trees_hash_keys_as_earlier_releases_did_so_commit_ids_stay_valid(url):
    """The API spells ``object-types/Office``; trees keep ``objectTypes/Office``, and so ids."""
    store = SqlStore(Database(url))
    try:
        office = {"api_name": "Office"}
        head = _write(store, MAIN, store.branch(MAIN).head, {"object-types/Office": office})
        legacy_key = "objectTypes/Office"
        bucket = {legacy_key: content_hash(canonical_json(office))}
        root = {bucket_of(legacy_key): content_hash(canonical_json(bucket))}
        assert head.root == content_hash(canonical_json(root))
        snapshot = store.snapshot(head.id)
        assert (
            list(snapshot) == ["object-types/Office"] and snapshot["object-types/Office"] == office
        )
        found, _ = store.log([head.id], resource="object-types/Office", limit=10)
        assert [c.id for c in found] == [head.id]
    finally:
        store.close()


def test_a_database_from_before_the_index_gets_it_on_its_next_commit(url):
    store = SqlStore(Database(url))
    ontology = company()
    head = _write(store, MAIN, store.branch(MAIN).head, ontology)
    with store.db.write() as conn:
        conn.execute(sa.text("ALTER TABLE commits DROP COLUMN refs"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 3"))
    store.close()
    store = SqlStore(Database(url))
    try:
        legacy = store.snapshot(head.id)
        assert legacy.commit.refs is None and legacy.referrers("object-types/Office") is None
        assert dict(legacy.items()) == ontology
        described = {**ontology["object-types/Office"], "description": "where people work"}
        head = _write(store, MAIN, head.id, {"object-types/Office": described})
        _assert_index_matches_a_scan(store.snapshot(head.id))
    finally:
        store.close()


def test_a_filtered_history_page_walks_a_bounded_number_of_commits(url, monkeypatch):
    monkeypatch.setattr(sql_store, "LOG_SCAN_LIMIT", 5)
    store = SqlStore(Database(url))
    try:
        head = _write(store, MAIN, store.branch(MAIN).head, {"object-types/A": {"api_name": "A"}})
        added = head.id
        for i in range(12):
            head = _write(store, MAIN, head.id, {"object-types/B": {"api_name": "B", "n": i}})
        frontier, pages, found = [head.id], 0, []
        while frontier:
            page, frontier = store.log(frontier, resource="object-types/A", limit=2)
            found += [c.id for c in page]
            pages += 1
            assert pages <= 5
        assert found == [added] and pages == 3
        everything, rest = store.log([head.id], resource=None, limit=10)
        assert len(everything) == 10 and rest
    finally:
        store.close()


def test_a_database_from_before_nanoseconds_keeps_its_times(url):
    store = SqlStore(Database(url))
    head = _write(store, MAIN, store.branch(MAIN).head, {"object-types/A": {"api_name": "A"}})
    store.record_events([OutboxEvent(type="oms.schema.validated", subject="s", actor="t")])
    created_ns = store.branch(MAIN).created_ns
    with store.db.write() as conn:
        # Back to the columns of the release before: microseconds, and ISO text in the outbox.
        for table, new, old in (
            ("commits", "time_ns", "time_us"),
            ("branches", "created_ns", "created_us"),
        ):
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {old} BIGINT"))
            conn.execute(sa.text(f"UPDATE {table} SET {old} = {new} / 1000"))
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {new}"))
        conn.execute(sa.text("ALTER TABLE outbox ADD COLUMN time VARCHAR(40)"))
        conn.execute(sa.text("UPDATE outbox SET time = '2026-01-01T00:00:03.250000+00:00'"))
        conn.execute(sa.text("ALTER TABLE outbox DROP COLUMN time_ns"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 4"))
    store.close()
    store = SqlStore(Database(url))
    try:
        assert store.commit(head.id).time_ns == head.time_ns // 1000 * 1000
        assert store.branch(MAIN).created_ns == created_ns // 1000 * 1000
        with store.db.read() as conn:
            (moment,) = conn.execute(sa.select(sql_store.outbox.c.time_ns)).scalars()
        assert moment == 1_767_225_603_250_000_000
    finally:
        store.close()


def test_commits_are_found_by_prefix_and_tags_are_kept_once(url):
    store = SqlStore(Database(url))
    try:
        root = store.branch(MAIN).head
        one = _write(store, MAIN, root, {"object-types/A": {"api_name": "A"}})
        assert store.commit_ids(one.id[:7], limit=5) == [one.id]
        assert store.commit_ids(one.id, limit=5) == [one.id]
        assert store.commit_ids("", limit=5) == sorted([root, one.id])

        def event() -> OutboxEvent:
            return OutboxEvent(type="oms.tag.created", subject="tags/v1", actor="tester", data={})

        tag = TagRecord("v1", one.id, "release", "tester", 1)
        assert store.create_tag(tag, event()) == tag
        with pytest.raises(errors.AlreadyExists):
            store.create_tag(TagRecord("v1", root, "", "tester", 2), event())
        assert store.tag("v1") == tag and store.tags(after="", limit=10) == [tag]
        assert store.delete_tag("v1", event()) == tag
        assert store.find_tag("v1") is None
        with pytest.raises(errors.NotFound):
            store.delete_tag("v1", event())
    finally:
        store.close()
