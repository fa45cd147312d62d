"""Property tests of object edits and reads over the real store.

A batch of object edits that fails part way writes nothing, merging object edits that do not
overlap gives their union, and a filtered listing returns exactly the objects that match.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from common import errors
from common.db import Database
from oms.data import ObjectService
from oms.service import Edit, Force, MergeStrategy, OntologyService
from oms.sql_store import OBJECT_CHUNK, SqlStore, blobs, commits, outbox
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin
from tests.support.ontology import object_type, prop

PKS = [f"p{i}" for i in range(8)]


def objects_of(pks: list[str]) -> st.SearchStrategy[list[dict[str, object]]]:
    """Valid objects with distinct primary keys among ``pks``."""
    return st.lists(
        st.builds(
            lambda pk, level: {"id": pk, "level": level}, st.sampled_from(pks), st.integers(-5, 5)
        ),
        max_size=4,
        unique_by=lambda o: o["id"],
    )


bad_level = st.sampled_from(["five", 2**40, 1.5, [1]])


@contextmanager
def fresh_service() -> Iterator[OntologyService]:
    """A store with a ``dev`` branch holding the ``Item`` type."""
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(Database(f"sqlite:///{Path(folder) / 'oms.db'}"))
        try:
            service = OntologyService(store)
            service.create_branch(
                ADMIN, "dev", source="main", base_branch="", compatibility_mode=""
            )
            item = object_type("Item", prop("level", "integer"))
            commit_as_admin(service, "dev", [Edit("object-types/Item", item)], "schema")
            yield service
        finally:
            store.close()


def _rows(service: OntologyService) -> tuple[int, ...]:
    with service.store.db.read() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (blobs, commits, outbox)
        )


@settings(max_examples=40, deadline=None)
@given(before=objects_of(PKS[:4]), after=objects_of(PKS[4:]), bad=bad_level)
def test_a_batch_failing_part_way_writes_nothing(before, after, bad) -> None:
    batch = [*before, {"id": "bad", "level": bad}, *after]
    with fresh_service() as service:
        head, rows = service.store.branch("dev").head, _rows(service)
        try:
            commit_as_admin(
                service, "dev", [Edit("", o, object_type="Item") for o in batch], "batch"
            )
        except errors.InvalidArgument as refused:
            assert [(v.field, v.reason) for v in refused.violations] == [
                (f"changes[{len(before)}].object.properties.level", "INVALID_TYPE")
            ]
        else:
            raise AssertionError("a batch with a bad value was written")
        assert service.store.branch("dev").head == head
        assert _rows(service) == rows
        assert service.store.snapshot(head).object_keys("Item") == []


side = st.dictionaries(st.sampled_from(PKS), st.integers(-5, 5), max_size=5)


@settings(max_examples=40, deadline=None)
@given(ours=side, theirs=side, strategy=st.sampled_from(list(MergeStrategy)))
def test_merging_edits_that_do_not_overlap_gives_their_union(ours, theirs, strategy) -> None:
    theirs = {pk: level for pk, level in theirs.items() if pk not in ours}
    with fresh_service() as service:
        objects = ObjectService(service)
        service.create_branch(
            ADMIN, "other", source="dev", base_branch="dev", compatibility_mode=""
        )
        for branch, edits in (("dev", ours), ("other", theirs)):
            if edits:
                commit_as_admin(
                    service,
                    branch,
                    [
                        Edit("", {"id": pk, "level": v}, object_type="Item")
                        for pk, v in edits.items()
                    ],
                    "edits",
                )
        service.merge(ADMIN, "other", target="dev", strategy=strategy, message="", force=Force())
        snapshot = service.store.snapshot(service.store.branch("dev").head)
        merged = {
            pk: objects.get("dev", "Item", pk).values["level"]
            for pk in snapshot.object_keys("Item")
        }
        assert merged == ours | theirs


def _listed(objects: ObjectService, filter_text: str, order_by: str) -> list[str]:
    """Every primary key a filtered listing returns, following its pages."""
    listed: list[str] = []
    token = ""
    while True:
        page = objects.list_objects(
            "dev",
            "Item",
            revision="",
            filter_text=filter_text,
            order_by=order_by,
            page_size=3,
            page_token=token,
        )
        listed.extend(o.primary_key for o in page.items)
        token = page.next_page_token
        if not token:
            return listed


LEVEL = st.integers(-3, 3)
conditions = st.one_of(
    st.builds(lambda v: (f"level = {v}", lambda x: x == v), LEVEL),
    st.builds(lambda v: (f"level >= {v}", lambda x: x >= v), LEVEL),
    st.builds(lambda vs: (f"level in {sorted(vs)}", lambda x: x in vs), st.sets(LEVEL, max_size=3)),
)


@settings(max_examples=30, deadline=None)
@given(
    levels=st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), LEVEL, max_size=12),
    condition=conditions,
    descending=st.booleans(),
)
def test_a_filtered_listing_returns_exactly_the_objects_that_match(
    levels, condition, descending
) -> None:
    text, holds = condition
    with fresh_service() as service:
        objects = ObjectService(service)
        if levels:
            edits = [
                Edit("", {"id": pk, "level": v}, object_type="Item") for pk, v in levels.items()
            ]
            commit_as_admin(service, "dev", edits, "objects")
        wanted = sorted(pk for pk, v in levels.items() if holds(v))
        assert _listed(objects, text, "") == wanted
        by_level = sorted(wanted, key=lambda pk: levels[pk], reverse=descending)
        listed = _listed(objects, text, f"level {'desc' if descending else 'asc'}")
        assert [levels[pk] for pk in listed] == [levels[pk] for pk in by_level]
        assert sorted(listed) == wanted


def test_a_snapshot_reads_objects_in_the_order_asked_skips_absent_ones_and_reads_lazily() -> None:
    with fresh_service() as service:
        edits = [Edit("", {"id": f"o{n}", "level": n}, object_type="Item") for n in range(1500)]
        commit_as_admin(service, "dev", edits, "objects")
        snapshot = service.store.snapshot(service.store.branch("dev").head)
        asked = ["o7", "missing", "o1", "o1499"]
        assert [(pk, v["level"]) for pk, v in snapshot.objects("Item", asked)] == [
            ("o7", 7),
            ("o1", 1),
            ("o1499", 1499),
        ]
        assert list(snapshot.objects("Nothing", ["o1"])) == []

        read: list[int] = []
        blobs_of = service.store.blobs

        def counting(hashes):
            found = blobs_of(hashes)
            read.append(len(found))
            return found

        service.store.blobs = counting  # type: ignore[method-assign]
        first = next(snapshot.objects("Item", [f"o{n}" for n in range(1500)]))
        assert first[0] == "o0"
        assert read == [OBJECT_CHUNK] and OBJECT_CHUNK < 1500
