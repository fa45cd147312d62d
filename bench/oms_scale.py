"""OMS at scale: 10,000 object types of 20 properties, a branch changing 1,000 of them.

Prints the time to validate, diff, rebase, revert and merge that branch's change, and to
commit one change with 1,000 and with 100,000 commits of history. Everything runs in-process
through the service layer (``OntologyService`` and ``HistoryService`` on ``SqlStore``, SQLite
in a temporary folder): the figures are the service's own cost, without gRPC. The history is
built with durability relaxed (``PRAGMA synchronous=OFF``) to build it quickly; every timed
step runs on a fresh engine with the service's normal settings (WAL, ``synchronous=FULL``).
History commits alternate one type's description, so their snapshots deduplicate and the
history costs rows, not megabytes; each is still a real commit with its parent, change log
and content hash.

``OMS_BENCH_HISTORY`` (default 100000) sets the longer history.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from common.db import Database
from oms.history import HistoryService
from oms.service import Edit, Force, MergeStrategy, OntologyService
from oms.sql_store import SqlStore
from oms.store import NewCommit, OntologyStore
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin

TYPES = 10_000
PROPERTIES = 20
CHANGED = 1_000
SHORT_HISTORY = 1_000
LONG_HISTORY = int(os.environ.get("OMS_BENCH_HISTORY", "100000"))

T = TypeVar("T")


def object_type(index: int, *, extra: bool = False) -> dict[str, Any]:
    properties = [
        {"api_name": "id", "data_type": {"base": "string"}, "required": True, "unique": True}
    ]
    properties += [
        {"api_name": f"field{p}", "data_type": {"base": "integer" if p % 3 else "string"}}
        for p in range(1, PROPERTIES)
    ]
    if extra:
        properties.append({"api_name": "note", "data_type": {"base": "text"}})
    return {
        "api_name": f"Type{index:05d}",
        "description": f"Object type number {index}",
        "primary_key": "id",
        "properties": properties,
    }


def timed(label: str, action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    print(f"  {label:<52} {elapsed:8.3f} s", flush=True)
    return result, elapsed


def fast_database(url: str) -> Database:
    """An engine for bulk loading only: commits are not flushed to disk one by one."""
    db = Database(url)

    @sa.event.listens_for(db.engine, "connect")
    def _relax(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    return db


def edit(index: int, *, extra: bool = False) -> Edit:
    resource = object_type(index, extra=extra)
    return Edit(f"object-types/{resource['api_name']}", resource)


def build_history(store: OntologyStore, branch: str, count: int) -> None:
    """``count`` commits on ``branch``, each changing one type's description."""
    head = store.branch(branch).head
    base = object_type(0)
    for i in range(count):
        resource = dict(base, description=f"toggle {i % 2}")
        new = NewCommit(
            parents=(head,),
            changes={"object-types/Type00000": resource},
            author="bench",
            message=f"history {i}",
        )
        head = store.write_commit(branch, head, new, lambda _commit: []).id


def commit_one(service: OntologyService, branch: str, marker: str) -> None:
    resource = dict(object_type(1), description=f"one change {marker}")
    commit_as_admin(service, branch, [Edit("object-types/Type00001", resource)], "one change")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'oms.db'}"
        print(f"ontology: {TYPES} object types x {PROPERTIES} properties; {CHANGED} changed")
        loader = OntologyService(SqlStore(fast_database(url)))
        timed(
            "load the ontology (one checked commit)",
            lambda: commit_as_admin(loader, "main", [edit(i) for i in range(TYPES)], "load"),
        )
        loader.create_branch(
            ADMIN, "feature", source="main", base_branch="main", compatibility_mode=""
        )
        timed(
            f"commit {CHANGED} changed types on a branch (checked)",
            lambda: commit_as_admin(
                loader,
                "feature",
                [edit(i, extra=True) for i in range(0, TYPES, TYPES // CHANGED)],
                "add a note to 1,000 types",
            ),
        )
        loader.create_branch(
            ADMIN, "replay", source="feature", base_branch="main", compatibility_mode=""
        )
        for name in ("short", "long"):
            loader.create_branch(
                ADMIN, name, source="main", base_branch="main", compatibility_mode=""
            )
        moved = dict(object_type(3), description="changed on main meanwhile")
        commit_as_admin(
            loader,
            "main",
            [Edit("object-types/Type00003", moved)],
            "an unrelated change on main, so the merge is three-way",
        )
        start = time.perf_counter()
        build_history(loader.store, "short", SHORT_HISTORY)
        build_history(loader.store, "long", LONG_HISTORY)
        label = f"build {SHORT_HISTORY} + {LONG_HISTORY} commits of history"
        print(f"  {label:<52} {time.perf_counter() - start:8.3f} s", flush=True)
        loader.store.close()

        service = OntologyService(SqlStore(Database(url)))
        validation, cold_s = timed(
            "validate the branch, cold (fresh process, no cache)",
            lambda: service.validate(ADMIN, "feature", against="", mode=""),
        )
        _, warm_s = timed(
            "validate the branch, warm (resources cached)",
            lambda: service.validate(ADMIN, "feature", against="", mode=""),
        )
        diff, _ = timed(
            "diff main..branch (1,000 types, field level)",
            lambda: service.diff("main", "feature", page_size=1000, page_token=""),
        )
        rewrites = HistoryService(service)
        rebased, _ = timed(
            "rebase a copy of the branch onto main (one commit)",
            lambda: rewrites.rebase(
                ADMIN, "replay", onto="main", message="", resolutions=(), expected_head=""
            ),
        )
        timed(
            f"revert that rebase's {CHANGED} changes",
            lambda: rewrites.revert(
                ADMIN,
                "replay",
                commit=rebased.commit.id,
                message="",
                resolutions=(),
                force=Force(),
            ),
        )
        merged, _ = timed(
            "three-way merge of the branch into main (validated)",
            lambda: service.merge(
                ADMIN,
                "feature",
                target="main",
                strategy=MergeStrategy.MERGE_COMMIT,
                message="",
                force=Force(),
            ),
        )
        short, long = best_commit_times(service, ("short", "long"))
        for history, seconds in ((SHORT_HISTORY, short), (LONG_HISTORY, long)):
            label = f"commit one change, {history} commits of history"
            print(f"  {label:<52} {seconds:8.4f} s")
        print(f"  ratio long/short history: {long / short:.2f}")
        print(
            f"  validation: {len(validation.findings)} findings, passed={validation.passed}; "
            f"diff: {len(diff.changes)} resources; merge: {merged.outcome.value}; "
            f"rebase: {rebased.outcome.value}; "
            f"validation under 0.3 s: cold {cold_s < 0.3}, warm {warm_s < 0.3}"
        )
        service.store.close()


def best_commit_times(
    service: OntologyService, branches: tuple[str, str], rounds: int = 15
) -> tuple[float, float]:
    """The fastest one-change commit on each branch, alternating between them.

    Alternating makes load from elsewhere on the machine hit both alike; the first round warms
    the caches.
    """
    best = [float("inf"), float("inf")]
    for attempt in range(rounds + 1):
        for index, branch in enumerate(branches):
            start = time.perf_counter()
            commit_one(service, branch, str(attempt))
            if attempt:
                best[index] = min(best[index], time.perf_counter() - start)
    return best[0], best[1]


if __name__ == "__main__":
    main()
