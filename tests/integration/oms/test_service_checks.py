"""Write checks through the service on a real store: what a commit is blamed for."""

from __future__ import annotations

import pytest

from common import errors
from common.db import Database
from oms.service import Edit, OntologyService
from oms.sql_store import SqlSnapshot, SqlStore
from oms.store import MAIN, NewCommit
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin
from tests.support.ontology import company, link_type


@pytest.fixture
def service(tmp_path):
    store = SqlStore(Database(f"sqlite:///{tmp_path / 'oms.db'}"))
    yield OntologyService(store)
    store.close()


def _plant(service: OntologyService, changes) -> None:
    """Write straight through the store, unchecked: data stored under older, laxer rules."""
    head = service.store.branch(MAIN).head
    new = NewCommit(parents=(head,), changes=changes, author="legacy", message="legacy")
    service.store.write_commit(MAIN, head, new, lambda _commit: [])


def _commit(service: OntologyService, *edits: Edit) -> None:
    commit_as_admin(service, MAIN, list(edits), "batch")


def test_a_batch_is_not_blamed_for_what_a_referrer_already_had(service) -> None:
    ontology = company()
    ontology["link-types/owns"] = link_type("owns", "Employee", "Car")  # dangling since before
    _plant(service, ontology)
    employee = ontology["object-types/Employee"]
    widened = {**employee, "properties": [*employee["properties"], {"api_name": "nickname"}]}
    widened["properties"][-1]["data_type"] = {"base": "string", "array": False}
    _commit(service, Edit("object-types/Employee", widened))
    assert (
        service.get(MAIN, "object-types", "Employee").resource["properties"][-1]["api_name"]
        == "nickname"
    )


def test_a_batch_still_checks_what_it_writes_whole(service) -> None:
    ontology = company()
    ontology["link-types/owns"] = link_type("owns", "Employee", "Car")  # dangling since before
    _plant(service, ontology)
    touched = {**ontology["link-types/owns"], "description": "cars people own"}
    with pytest.raises(errors.InvalidArgument) as caught:
        _commit(service, Edit("link-types/owns", touched))
    assert [v.field for v in caught.value.violations] == [
        "changes[0].upsert.link_type.to_object_type"
    ]


@pytest.fixture
def scans(monkeypatch):
    """Counts full listings of a stored snapshot, the cost a write must not pay."""
    counted = {"scans": 0}
    listing = SqlSnapshot.keys_sorted

    def counting(self):
        counted["scans"] += 1
        return listing(self)

    monkeypatch.setattr(SqlSnapshot, "keys_sorted", counting)
    return counted


def test_writes_find_referrers_through_the_index_without_reading_the_ontology(
    service, scans
) -> None:
    ontology = company()
    _commit(service, *(Edit(key, resource) for key, resource in ontology.items()))
    employee = ontology["object-types/Employee"]
    shrunk = {
        **employee,
        "properties": [p for p in employee["properties"] if p["api_name"] != "level"],
    }
    scans["scans"] = 0
    with pytest.raises(errors.InvalidArgument) as caught:
        service.update(
            ADMIN, MAIN, "object-types", shrunk, mask=(), explicit={}, etag="", message=""
        )
    assert {v.reason for v in caught.value.violations} == {"BREAKS_DEPENDENT"}
    assert "action-types/relocate" in caught.value.violations[0].description
    with pytest.raises(errors.InvalidArgument) as caught:
        _commit(service, Edit("object-types/Employee", shrunk))
    assert "breaks action-types/relocate" in caught.value.violations[0].description
    with pytest.raises(errors.FailedPrecondition) as refused:
        service.delete(ADMIN, MAIN, "object-types", "Office", etag="", message="")
    assert sorted(v.description.split(" by ")[1] for v in refused.value.violations) == [
        "action-types/hire (parameters[2].object_type)",
        "action-types/relocate (parameters[1].object_type)",
        "link-types/worksIn (to_object_type)",
    ]
    described = {**employee, "description": "people", "primary_key": "id"}
    _commit(service, Edit("object-types/Employee", described))
    assert scans["scans"] == 0
