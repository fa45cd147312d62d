"""Property tests of merging over the real store.

The union when sides do not overlap, identical changes never conflict, and a conflicting
merge writes nothing at all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from common import errors
from common.db import Database
from oms.service import Edit, Force, MergeStrategy, OntologyService
from oms.sql_store import SqlStore, commits, outbox
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin

EXISTING = ("Alpha", "Bravo", "Charlie")
NEW = ("Delta", "Echo")

edit = st.one_of(
    st.just(("keep",)),
    st.just(("delete",)),
    st.tuples(st.just("describe"), st.sampled_from(["x", "y"])),
)
side = st.fixed_dictionaries(
    {
        "existing": st.fixed_dictionaries({name: edit for name in EXISTING}),
        "new": st.fixed_dictionaries(
            {name: st.one_of(st.none(), st.sampled_from(["x", "y"])) for name in NEW}
        ),
    }
)


def object_type(name, description=""):
    return {
        "api_name": name,
        "description": description,
        "primary_key": "id",
        "properties": [{"api_name": "id", "data_type": {"base": "string"}, "required": True}],
    }


def apply(service, branch, changes):
    edits = []
    for name, action in changes["existing"].items():
        if action[0] == "delete":
            edits.append(Edit(f"object-types/{name}", None))
        elif action[0] == "describe":
            edits.append(Edit(f"object-types/{name}", object_type(name, action[1])))
    for name, description in changes["new"].items():
        if description is not None:
            edits.append(Edit(f"object-types/{name}", object_type(name, description)))
    if edits:
        commit_as_admin(service, branch, edits, "change")


def state(service, branch):
    snapshot = service.store.snapshot(service.store.branch(branch).head)
    return {key: snapshot[key]["description"] for key in snapshot}


def expected_merge(base, ours, theirs):
    """Per resource: unchanged sides take the other; equal changes agree; else a conflict."""
    merged, conflicts = {}, []
    for key in sorted(base.keys() | ours.keys() | theirs.keys()):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        else:
            conflicts.append(key)
            continue
        if value is not None:
            merged[key] = value
    return merged, conflicts


def row_counts(store):
    with store.db.read() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (commits, outbox)
        )


@settings(max_examples=60, deadline=None)
@given(ours=side, theirs=side, strategy=st.sampled_from(list(MergeStrategy)))
def test_merge_matches_the_three_way_rule_and_conflicts_write_nothing_but_their_record(
    ours, theirs, strategy
):
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(Database(f"sqlite:///{Path(folder) / 'oms.db'}"))
        try:
            service = OntologyService(store)
            service.create_branch(
                ADMIN, "target", source="main", base_branch="main", compatibility_mode=""
            )
            commit_as_admin(
                service,
                "target",
                [Edit(f"object-types/{n}", object_type(n)) for n in EXISTING],
                "base",
            )
            service.create_branch(
                ADMIN, "source", source="target", base_branch="target", compatibility_mode=""
            )
            base = state(service, "target")
            apply(service, "target", ours)
            apply(service, "source", theirs)
            before_head = store.branch("target").head
            before = state(service, "target")
            merged, conflicts = expected_merge(base, before, state(service, "source"))
            counts = row_counts(store)
            if conflicts:
                with pytest.raises(errors.FailedPrecondition) as caught:
                    service.merge(
                        ADMIN, "source", target="", strategy=strategy, message="", force=Force()
                    )
                assert caught.value.reason == "MERGE_CONFLICT"
                assert len(caught.value.details) >= len(conflicts)
                assert store.branch("target").head == before_head
                assert state(service, "target") == before
                commits_before, events_before = counts
                assert row_counts(store) == (commits_before, events_before + 1)  # the refusal
            else:
                service.merge(
                    ADMIN, "source", target="", strategy=strategy, message="", force=Force()
                )
                assert state(service, "target") == merged
        finally:
            store.close()
