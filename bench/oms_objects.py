"""OMS objects at scale: 100,000 objects of one type with 20 properties on a branch.

Prints the bulk load rate (batches of 1,000 through ``CommitChanges``), get by key (p50, p99),
a filtered list page and a first page in key order, ExecuteAction (p50, p99), a breaking
schema change refused after counting the objects it affects, and the cost of committing one
object change with 1,000 and with 100,000 objects on the branch. Everything runs in-process through
the service layer (``OntologyService`` and ``ObjectService`` on ``SqlStore``, SQLite in a
temporary folder, the service's normal durability): the service's own cost, without gRPC.

``OMS_BENCH_OBJECTS`` (default 100000) sets the number of objects.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.oms_scale import timed
from common import errors
from common.db import Database
from oms.data import ObjectService
from oms.service import Edit, OntologyService
from oms.sql_store import SqlStore
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin

OBJECTS = int(os.environ.get("OMS_BENCH_OBJECTS", "100000"))
PROPERTIES = 20
BATCH = 1_000
SMALL = 1_000
SAMPLES = 1_000


def bump_action() -> dict[str, Any]:
    """``bump``: sets ``field1`` of an item, if the new value stays under 1,000."""
    return {
        "api_name": "bump",
        "parameters": [
            {"api_name": "item", "object_type": "Item", "required": True},
            {"api_name": "value", "data_type": {"base": "integer"}, "required": True},
        ],
        "rules": [
            {
                "kind": "MODIFY_OBJECT",
                "object_type": "Item",
                "object_parameter": "item",
                "values": {"field1": "value"},
            }
        ],
        "submission_criteria": [
            {"parameter": "value", "operator": "<", "value": 1000, "message": "too big"}
        ],
    }


def item_type() -> dict[str, Any]:
    """``Item``: a string key and 19 properties, integers and strings alternating."""
    properties: list[dict[str, Any]] = [
        {"api_name": "id", "data_type": {"base": "string"}, "required": True}
    ]
    properties += [
        {"api_name": f"field{p}", "data_type": {"base": "integer" if p % 2 else "string"}}
        for p in range(1, PROPERTIES)
    ]
    return {"api_name": "Item", "primary_key": "id", "properties": properties}


def item(index: int) -> dict[str, Any]:
    values: dict[str, Any] = {"id": f"item-{index:06d}"}
    for p in range(1, PROPERTIES):
        values[f"field{p}"] = (index * p) % 100 if p % 2 else f"v{(index + p) % 50}"
    return values


def load(service: OntologyService, branch: str, start: int, stop: int) -> float:
    """Load objects ``start..stop`` in batches; the seconds it took."""
    began = time.perf_counter()
    for first in range(start, stop, BATCH):
        edits = [
            Edit("", item(i), object_type="Item") for i in range(first, min(first + BATCH, stop))
        ]
        commit_as_admin(service, branch, edits, "load")
    return time.perf_counter() - began


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def refused_change(service: OntologyService) -> str:
    """Narrow ``field3`` from integer to string: every object violates it, all are counted."""
    narrowed = item_type()
    narrowed["properties"][3]["data_type"] = {"base": "string"}
    try:
        commit_as_admin(service, "data", [Edit("object-types/Item", narrowed)], "narrow")
    except errors.FailedPrecondition as refused:
        return refused.violations[0].description
    raise AssertionError("the breaking change was accepted")


def commit_cost(objects: ObjectService, branch: str, count: int) -> float:
    """The mean seconds of one object update with ``count`` objects on the branch."""
    began = time.perf_counter()
    for n in range(20):
        pk = item(random.randrange(count))["id"]
        objects.update(
            ADMIN, branch, "Item", pk, {"field1": n}, mask=["field1"], etag="", message="bench"
        )
    return (time.perf_counter() - began) / 20


def first_page(objects: ObjectService, filter_text: str) -> object:
    return objects.list_objects(
        "data",
        "Item",
        revision="",
        filter_text=filter_text,
        order_by="",
        page_size=50,
        page_token="",
    )


def main() -> None:
    random.seed(7)
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(Database(f"sqlite:///{Path(folder) / 'oms.db'}"))
        service = OntologyService(store)
        objects = ObjectService(service)
        service.create_branch(ADMIN, "data", source="main", base_branch="", compatibility_mode="")
        commit_as_admin(
            service,
            "data",
            [Edit("object-types/Item", item_type()), Edit("action-types/bump", bump_action())],
            "schema",
        )
        print(f"objects: {OBJECTS} of one type x {PROPERTIES} properties", flush=True)
        first = load(service, "data", 0, SMALL)
        small_cost = commit_cost(objects, "data", SMALL)
        rest = load(service, "data", SMALL, OBJECTS)
        rate = OBJECTS / (first + rest)
        print(f"  {'bulk load (batches of 1,000)':<52} {first + rest:8.3f} s ({rate:,.0f}/s)")
        gets = []
        for _ in range(SAMPLES):
            pk = item(random.randrange(OBJECTS))["id"]
            began = time.perf_counter()
            objects.get("data", "Item", pk)
            gets.append(time.perf_counter() - began)
        print(f"  {'get by key':<52} {percentiles(gets)}")
        for label, filter_text in (
            ("first page, key order (50)", ""),
            ("filtered page: field1 = 7 (50)", "field1 = 7"),
            (
                "filtered page: field2 in [...] AND field3 >= 50",
                'field2 in ["v1", "v2"] AND field3 >= 50',
            ),
        ):
            for warmth in ("cold", "warm"):
                timed(f"{label}, {warmth}", partial(first_page, objects, filter_text))
        runs = []
        for n in range(200):
            pk = item(random.randrange(OBJECTS))["id"]
            began = time.perf_counter()
            objects.execute_action(
                ADMIN, "data", "bump", {"item": pk, "value": n}, validate_only=False
            )
            runs.append(time.perf_counter() - began)
        print(f"  {'ExecuteAction (modify one object)':<52} {percentiles(runs)}")
        timed("breaking change counted over every object", lambda: refused_change(service))
        large_cost = commit_cost(objects, "data", OBJECTS)
        print(f"  {f'commit one object change, {SMALL:,} on the branch':<52} {small_cost:8.3f} s")
        print(f"  {f'commit one object change, {OBJECTS:,} on the branch':<52} {large_cost:8.3f} s")
        store.close()
