"""Objects and links through the service on a real store.

Every data rule and cardinality, lists, reads by revision, merges and what a commit costs.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import sqlalchemy as sa

from common import errors
from common.db import Database
from oms.checks import MAX_NESTING, MAX_RESOURCE_BYTES
from oms.data import ObjectService
from oms.merge import Choice, Resolution
from oms.service import Edit, Force, MergeStrategy, OntologyService
from oms.sql_store import SqlStore, outbox
from oms.store import NewCommit
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin
from tests.support.ontology import link_type, object_type, prop

BRANCH = "dev"


def _schema() -> list[Edit]:
    employee = object_type(
        "Employee",
        prop("name", required=True),
        prop("level", "integer"),
        prop("staffNo", "long"),
        prop("score", "double"),
        prop("salary", "decimal"),
        prop("active", "boolean"),
        prop("born", "date"),
        prop("seen", "timestamp"),
        prop("extra", "json"),
        prop("home", "geopoint"),
        prop("tags", data_type={"base": "string", "array": True}),
        prop("grade", enum_values=["junior", "senior"]),
        prop("email", unique=True),
    )
    office = object_type("Office", prop("city"))
    links = [
        link_type(name, "Employee", target, cardinality)
        for name, target, cardinality in (
            ("worksIn", "Office", "MANY_TO_ONE"),
            ("heads", "Office", "ONE_TO_ONE"),
            ("cleans", "Office", "ONE_TO_MANY"),
            ("visits", "Office", "MANY_TO_MANY"),
        )
    ]
    return [
        Edit("object-types/Employee", employee),
        Edit("object-types/Office", office),
        *(Edit(f"link-types/{lt['api_name']}", lt) for lt in links),
    ]


@pytest.fixture
def store(tmp_path):
    store = SqlStore(Database(f"sqlite:///{tmp_path / 'oms.db'}"))
    yield store
    store.close()


@pytest.fixture
def service(store) -> OntologyService:
    service = OntologyService(store)
    service.create_branch(ADMIN, BRANCH, source="main", base_branch="", compatibility_mode="")
    commit_as_admin(service, BRANCH, _schema(), "schema")
    return service


@pytest.fixture
def objects(service) -> ObjectService:
    return ObjectService(service)


def _employee(objects: ObjectService, pk: str, branch: str = BRANCH, **values: Any):
    return objects.create(ADMIN, branch, "Employee", {"id": pk, "name": pk, **values}, "")


def _office(objects: ObjectService, pk: str, branch: str = BRANCH):
    return objects.create(ADMIN, branch, "Office", {"id": pk}, "")


def _link(objects: ObjectService, link: str, from_pk: str, to_pk: str, branch: str = BRANCH):
    return objects.create_link(ADMIN, branch, link, from_pk, to_pk, "")


def _refused(call, *args: Any, **kwargs: Any) -> tuple[str, list[tuple[str, str]]]:
    with pytest.raises(errors.MeshError) as caught:
        call(*args, **kwargs)
    return caught.value.reason, [(v.field, v.reason) for v in caught.value.violations]


VALID = [
    ("level", 7, 7),
    ("staffNo", 2**40, 2**40),
    ("score", 1.5, 1.5),
    ("salary", "12.50", "12.50"),
    ("active", False, False),
    ("born", "1990-02-28", "1990-02-28"),
    ("seen", "2024-05-01T14:00:00.500+02:00", "2024-05-01T12:00:00.5Z"),
    ("extra", {"any": [1, "two"]}, {"any": [1, "two"]}),
    ("home", {"lat": 59.9, "lon": 10.7}, {"lat": 59.9, "lon": 10.7}),
    ("tags", ["a", "b"], ["a", "b"]),
    ("grade", "senior", "senior"),
]


@pytest.mark.parametrize(("name", "given", "stored"), VALID)
def test_each_data_type_takes_its_json_form(objects, name, given, stored) -> None:
    created = _employee(objects, "e1", **{name: given})
    assert created.values[name] == stored
    assert objects.get(BRANCH, "Employee", "e1").values[name] == stored


INVALID = [
    ("level", 2**31),
    ("level", True),
    ("level", "7"),
    ("staffNo", 2**63),
    ("score", "1.5"),
    ("salary", 12.5),
    ("salary", "1e3"),
    ("active", "yes"),
    ("born", "1990-02-30"),
    ("born", "1990-2-1"),
    ("seen", "2024-05-01T12:00:00"),
    ("seen", "yesterday"),
    ("home", {"lat": 91, "lon": 0}),
    ("home", [1, 2]),
    ("tags", "a"),
    ("tags", ["a", 1]),
    ("name", 3),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_a_value_outside_its_type_is_refused(objects, name, value) -> None:
    reason, violations = _refused(_employee, objects, "e1", **{name: value})
    assert reason == "INVALID_ARGUMENT"
    assert violations == [(f"object.properties.{name}", "INVALID_TYPE")]


def test_every_violation_of_an_object_is_reported_at_once(objects) -> None:
    _employee(objects, "e1", email="a@x")
    reason, violations = _refused(
        objects.create,
        ADMIN,
        BRANCH,
        "Employee",
        {"id": "e2", "grade": "boss", "email": "a@x", "nope": 1},
        "",
    )
    assert reason == "INVALID_ARGUMENT"
    assert sorted(violations) == [
        ("object.properties.email", "UNIQUE"),
        ("object.properties.grade", "ENUM_VALUE"),
        ("object.properties.name", "REQUIRED"),
        ("object.properties.nope", "UNKNOWN_PROPERTY"),
    ]


@pytest.mark.parametrize(
    ("pk", "reason"),
    [("", "REQUIRED"), ("k" * 1025, "TOO_LONG"), ("a\x00b", "INVALID_CHARACTERS")],
)
def test_a_primary_key_no_path_can_hold_is_refused(objects, service, pk, reason) -> None:
    head = service.store.branch(BRANCH).head
    assert _refused(_employee, objects, pk) == (
        "INVALID_ARGUMENT",
        [("object.properties.id", reason)],
    )
    assert _refused(_batch, service, Edit("", {"id": pk, "name": "n"}, object_type="Employee")) == (
        "INVALID_ARGUMENT",
        [("changes[0].object.properties.id", reason)],
    )
    assert service.store.branch(BRANCH).head == head
    assert _employee(objects, "k" * 1024).values["id"] == "k" * 1024


def test_a_resource_past_a_mebibyte_of_json_is_refused_whole(objects, service) -> None:
    head = service.store.branch(BRANCH).head
    wide = "\u0001" * (MAX_RESOURCE_BYTES // 6)  # each spelled \u0001: six bytes
    korean = "\ud55c" * (MAX_RESOURCE_BYTES // 3)  # three bytes each in UTF-8
    assert _refused(_employee, objects, "e1", extra=wide) == (
        "INVALID_ARGUMENT",
        [("object", "TOO_LARGE")],
    )
    assert _refused(_employee, objects, "e1", name=korean) == (
        "INVALID_ARGUMENT",
        [("object", "TOO_LARGE")],
    )
    big_type = object_type("Big", *(prop(f"p{i}", description="d" * 200) for i in range(6000)))
    reason, violations = _refused(
        _batch,
        service,
        Edit("", {"id": "e2", "name": "ok"}, object_type="Employee"),
        Edit("", {"id": "e3", "name": korean}, object_type="Employee"),
        Edit("object-types/Big", big_type),
    )
    assert (reason, sorted(violations)) == (
        "INVALID_ARGUMENT",
        [("changes[1].object", "TOO_LARGE"), ("changes[2].upsert", "TOO_LARGE")],
    )
    assert service.store.branch(BRANCH).head == head
    _employee(objects, "e1", name="\ud55c" * (MAX_RESOURCE_BYTES // 4))
    assert _refused(
        objects.update,
        ADMIN,
        BRANCH,
        "Employee",
        "e1",
        {"name": korean},
        mask=["name"],
        etag="",
        message="",
    ) == ("INVALID_ARGUMENT", [("object", "TOO_LARGE")])


def _nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_value_nested_past_the_limit_is_refused(objects, service) -> None:
    """Such an object was stored, then could not be answered inside an action's edits."""
    head = service.store.branch(BRANCH).head
    assert _refused(_employee, objects, "e1", extra=_nested(MAX_NESTING)) == (
        "INVALID_ARGUMENT",
        [("object", "TOO_DEEP")],
    )
    assert _refused(
        _batch,
        service,
        Edit("", {"id": "e2", "name": "n", "extra": [_nested(19)]}, object_type="Employee"),
    ) == ("INVALID_ARGUMENT", [("changes[0].object", "TOO_DEEP")])
    assert service.store.branch(BRANCH).head == head
    kept = _employee(objects, "e1", extra=_nested(MAX_NESTING - 1))  # the properties: one level
    assert objects.get(BRANCH, "Employee", "e1").values["extra"] == kept.values["extra"]


def test_unique_holds_on_update_and_frees_on_delete(objects) -> None:
    _employee(objects, "e1", email="a@x")
    _employee(objects, "e2", email="b@x")
    assert _refused(
        objects.update,
        ADMIN,
        BRANCH,
        "Employee",
        "e2",
        {"email": "a@x"},
        mask=["email"],
        etag="",
        message="",
    ) == ("INVALID_ARGUMENT", [("object.properties.email", "UNIQUE")])
    objects.delete(ADMIN, BRANCH, "Employee", "e1", etag="", delete_links=False, message="")
    updated = objects.update(
        ADMIN, BRANCH, "Employee", "e2", {"email": "a@x"}, mask=["email"], etag="", message=""
    )
    assert updated.values["email"] == "a@x"


def test_the_primary_key_never_changes(objects) -> None:
    _employee(objects, "e1")
    assert _refused(
        objects.update,
        ADMIN,
        BRANCH,
        "Employee",
        "e1",
        {"id": "e9", "name": "x"},
        mask=[],
        etag="",
        message="",
    ) == ("INVALID_ARGUMENT", [("object.properties.id", "PRIMARY_KEY_IMMUTABLE")])


def test_an_update_keeps_unmasked_properties_and_checks_the_etag(objects) -> None:
    created = _employee(objects, "e1", level=1, grade="junior")
    updated = objects.update(
        ADMIN,
        BRANCH,
        "Employee",
        "e1",
        {"level": 2},
        mask=["properties.level"],
        etag=created.etag,
        message="",
    )
    assert updated.values == {"id": "e1", "name": "e1", "level": 2, "grade": "junior"}
    assert _refused(
        objects.update,
        ADMIN,
        BRANCH,
        "Employee",
        "e1",
        {"level": 3},
        mask=["level"],
        etag=created.etag,
        message="",
    ) == ("ETAG_MISMATCH", [])


def test_a_taken_primary_key_and_an_unknown_type(objects) -> None:
    _employee(objects, "e1")
    assert _refused(_employee, objects, "e1")[0] == "OBJECT_EXISTS"
    assert _refused(objects.create, ADMIN, BRANCH, "Ghost", {"id": "g"}, "")[0] == (
        "RESOURCE_NOT_FOUND"
    )
    assert _refused(objects.get, BRANCH, "Employee", "nobody")[0] == "OBJECT_NOT_FOUND"


def test_a_link_needs_both_ends(objects) -> None:
    _employee(objects, "e1")
    assert _refused(_link, objects, "worksIn", "e1", "o1") == (
        "INVALID_ARGUMENT",
        [("link.to_primary_key", "OBJECT_NOT_FOUND")],
    )
    assert _refused(_link, objects, "worksIn", "e2", "o2") == (
        "INVALID_ARGUMENT",
        [
            ("link.from_primary_key", "OBJECT_NOT_FOUND"),
            ("link.to_primary_key", "OBJECT_NOT_FOUND"),
        ],
    )


@pytest.fixture
def two_of_each(objects) -> ObjectService:
    for pk in ("e1", "e2"):
        _employee(objects, pk)
    for pk in ("o1", "o2"):
        _office(objects, pk)
    return objects


@pytest.mark.parametrize(
    ("link", "second_to", "second_from"),
    [
        ("worksIn", "link.from_primary_key", None),
        ("heads", "link.from_primary_key", "link.to_primary_key"),
        ("cleans", None, "link.to_primary_key"),
        ("visits", None, None),
    ],
)
def test_cardinality_is_enforced_on_both_ends(two_of_each, link, second_to, second_from) -> None:
    """e1 -> o1 first; then e1 -> o2 (a second `to`) and e2 -> o1 (a second `from`)."""
    _link(two_of_each, link, "e1", "o1")
    for (from_pk, to_pk), field in ((("e1", "o2"), second_to), (("e2", "o1"), second_from)):
        if field is None:
            _link(two_of_each, link, from_pk, to_pk)
        else:
            assert _refused(_link, two_of_each, link, from_pk, to_pk) == (
                "INVALID_ARGUMENT",
                [(field, "CARDINALITY")],
            )


def test_linked_objects_are_listed_from_either_end(two_of_each) -> None:
    _link(two_of_each, "visits", "e1", "o1")
    _link(two_of_each, "visits", "e1", "o2")
    _link(two_of_each, "visits", "e2", "o2")

    def linked(object_type: str, pk: str) -> list[str]:
        page = two_of_each.linked_objects(
            BRANCH, object_type, pk, "visits", revision="", page_size=1, page_token=""
        )
        found = [o.primary_key for o in page.items]
        while page.next_page_token:
            page = two_of_each.linked_objects(
                BRANCH,
                object_type,
                pk,
                "visits",
                revision="",
                page_size=1,
                page_token=page.next_page_token,
            )
            found += [o.primary_key for o in page.items]
        return found

    assert linked("Employee", "e1") == ["o1", "o2"]
    assert linked("Office", "o2") == ["e1", "e2"]
    assert _refused(_link, two_of_each, "visits", "e1", "o1")[0] == "LINK_EXISTS"


def test_a_linked_object_is_deleted_only_with_its_links(two_of_each, store) -> None:
    _link(two_of_each, "worksIn", "e1", "o1")
    _link(two_of_each, "visits", "e2", "o1")
    reason, violations = _refused(
        two_of_each.delete, ADMIN, BRANCH, "Office", "o1", etag="", delete_links=False, message=""
    )
    assert reason == "OBJECT_LINKED" and len(violations) == 2
    commit = two_of_each.delete(
        ADMIN, BRANCH, "Office", "o1", etag="", delete_links=True, message=""
    )
    assert store.changes_in(commit.id, limit=10)[0] == [
        ("links/visits/e2/o1", "DELETED"),
        ("links/worksIn/e1/o1", "DELETED"),
        ("objects/Office/o1", "DELETED"),
    ]
    assert (
        two_of_each.linked_objects(
            BRANCH, "Employee", "e1", "worksIn", revision="", page_size=10, page_token=""
        ).items
        == []
    )


def _list(objects: ObjectService, filter_text: str = "", order_by: str = "", size: int = 50):
    found, token = [], ""
    while True:
        page = objects.list_objects(
            BRANCH,
            "Employee",
            revision="",
            filter_text=filter_text,
            order_by=order_by,
            page_size=size,
            page_token=token,
        )
        found += [o.primary_key for o in page.items]
        token = page.next_page_token
        if not token:
            return found


def test_lists_filter_order_and_page(objects) -> None:
    for i, (level, salary) in enumerate([(3, "10.5"), (1, "9.75"), (2, "100"), (3, "2")]):
        _employee(
            objects, f"e{i}", level=level, salary=salary, grade="junior" if i % 2 else "senior"
        )
    _employee(objects, "e9")
    assert _list(objects, size=2) == ["e0", "e1", "e2", "e3", "e9"]
    assert _list(objects, "level = 3") == ["e0", "e3"]
    assert _list(objects, "level >= 2 AND level < 3") == ["e2"]
    assert _list(objects, 'grade in ["junior"]') == ["e1", "e3"]
    assert _list(objects, 'salary > "9.8"') == ["e0", "e2"]  # by number, not as text
    assert _list(objects, "level = null") == ["e9"]
    assert _list(objects, order_by="level desc, salary", size=2) == ["e3", "e0", "e2", "e1", "e9"]
    reason, violations = _refused(
        objects.list_objects,
        BRANCH,
        "Employee",
        revision="",
        filter_text='level = "x" AND bogus = 1 AND level ~ 2',
        order_by="level sideways",
        page_size=0,
        page_token="",
    )
    assert reason == "INVALID_ARGUMENT"
    assert [v for v, _ in violations] == ["filter", "filter", "filter", "order_by"]


def test_a_filter_on_an_array_property_holds_when_one_of_its_elements_does(objects) -> None:
    _employee(objects, "e1", tags=["a", "b"])
    _employee(objects, "e2", tags=["b"])
    _employee(objects, "e3", tags=[])
    _employee(objects, "e4")
    assert _list(objects, 'tags = "a"') == ["e1"]
    assert _list(objects, 'tags = "b"') == ["e1", "e2"]
    assert _list(objects, 'tags in ["a", "z"]') == ["e1"]
    assert _list(objects, 'tags != "a"') == ["e2", "e3", "e4"]  # absent differs, as anywhere
    assert _list(objects, 'tags > "a"') == ["e1", "e2"]
    assert _list(objects, "tags = null") == ["e4"]
    assert _list(objects, "tags != null") == ["e1", "e2", "e3"]


def test_order_by_refuses_what_has_no_order_and_too_many_terms(objects) -> None:
    _employee(objects, "e1", extra={"a": 1}, home={"lat": 1.0, "lon": 2.0})
    _employee(objects, "e2", extra=[1], home={"lat": -1.0, "lon": 0.0})
    for order_by, reason in (
        ("extra", "INVALID_VALUE"),
        ("home desc", "INVALID_VALUE"),
        (", ".join(["level"] * 9), "TOO_MANY"),
    ):
        refused, violations = _refused(
            objects.list_objects,
            BRANCH,
            "Employee",
            revision="",
            filter_text="",
            order_by=order_by,
            page_size=10,
            page_token="",
        )
        assert (refused, violations) == ("INVALID_ARGUMENT", [("order_by", reason)])
    assert _list(objects, order_by=", ".join(["level"] * 8)) == ["e1", "e2"]


def test_a_filter_compares_with_at_most_a_hundred_values(objects) -> None:
    _employee(objects, "e1", level=1)
    hundred = " AND ".join(["level >= 0"] * 99 + ["level in [1]"])
    assert _list(objects, hundred) == ["e1"]
    assert _list(objects, f"level in {list(range(100))}") == ["e1"]
    for too_many in (
        " AND ".join(["level >= 0"] * 101),
        " AND ".join(["level >= 0"] * 99 + ["level in [1, 2]"]),
        f"level in {list(range(101))}",
    ):
        reason, violations = _refused(
            objects.list_objects,
            BRANCH,
            "Employee",
            revision="",
            filter_text=too_many,
            order_by="",
            page_size=10,
            page_token="",
        )
        assert (reason, violations) == ("INVALID_ARGUMENT", [("filter", "TOO_MANY")])


def test_reads_by_revision_see_objects_as_of_the_commit(objects, service) -> None:
    first = _employee(objects, "e1", level=1)
    objects.update(
        ADMIN, BRANCH, "Employee", "e1", {"level": 2}, mask=["level"], etag="", message=""
    )
    _employee(objects, "e2")
    assert objects.get(BRANCH, "Employee", "e1", revision=first.commit).values["level"] == 1
    at_first = objects.list_objects(
        BRANCH,
        "Employee",
        revision=first.commit,
        filter_text="",
        order_by="",
        page_size=10,
        page_token="",
    )
    assert [o.primary_key for o in at_first.items] == ["e1"]


def test_a_commit_writes_only_what_it_changes(objects, service, store) -> None:
    for i in range(300):
        _office(objects, f"o{i}")
    head = store.branch(BRANCH).head
    new = NewCommit(
        parents=(head,),
        changes={"objects/Office/o7": {"id": "o7", "city": "Oslo"}},
        author="a",
        message="m",
    )
    record, written, changes = store._prepare(new)
    # the object, its bucket, the type's root and the data root, whatever the number of
    # objects; plus the schema root and the reference index's root, rewritten unchanged
    assert len(written) == 4 + 2
    assert changes == [("objects/Office/o7", "MODIFIED")]
    assert record.root == store.commit(head).root
    assert store.changed_keys(head, head) == set()


def test_a_branch_shares_its_objects_and_diverges_by_its_changes(objects, service, store) -> None:
    for pk in ("e1", "e2"):
        _employee(objects, pk)
    service.create_branch(ADMIN, "other", source=BRANCH, base_branch=BRANCH, compatibility_mode="")
    objects.update(
        ADMIN, "other", "Employee", "e1", {"level": 5}, mask=["level"], etag="", message=""
    )
    assert store.changed_keys(store.branch(BRANCH).head, store.branch("other").head) == {
        "objects/Employee/e1"
    }
    assert "level" not in objects.get(BRANCH, "Employee", "e1").values
    (change,) = service.diff(BRANCH, "other", page_size=10, page_token="").changes
    assert (change.key, [(f.path, f.old, f.new) for f in change.fields]) == (
        "objects/Employee/e1",
        [("level", None, 5)],
    )


def _merge(service: OntologyService, source: str, target: str, **kwargs: Any):
    return service.merge(
        ADMIN,
        source,
        target=target,
        strategy=MergeStrategy.MERGE_COMMIT,
        message="",
        force=Force(),
        **kwargs,
    )


@pytest.fixture
def forked(objects, service) -> ObjectService:
    """``dev`` with e1 and o1, and ``other`` branched from it."""
    _employee(objects, "e1", level=1, grade="junior")
    _office(objects, "o1")
    _office(objects, "o2")
    service.create_branch(ADMIN, "other", source=BRANCH, base_branch=BRANCH, compatibility_mode="")
    return objects


def test_a_merge_combines_object_edits_field_by_field(forked, service) -> None:
    forked.update(
        ADMIN, BRANCH, "Employee", "e1", {"level": 2}, mask=["level"], etag="", message=""
    )
    forked.update(
        ADMIN, "other", "Employee", "e1", {"grade": "senior"}, mask=["grade"], etag="", message=""
    )
    _employee(forked, "e2", branch="other")
    _merge(service, "other", BRANCH)
    assert forked.get(BRANCH, "Employee", "e1").values["level"] == 2
    assert forked.get(BRANCH, "Employee", "e1").values["grade"] == "senior"
    assert forked.get(BRANCH, "Employee", "e2").values["name"] == "e2"


def test_an_object_field_changed_on_both_sides_conflicts_and_resolves(forked, service) -> None:
    forked.update(
        ADMIN, BRANCH, "Employee", "e1", {"level": 2}, mask=["level"], etag="", message=""
    )
    forked.update(
        ADMIN, "other", "Employee", "e1", {"level": 3}, mask=["level"], etag="", message=""
    )
    with pytest.raises(errors.FailedPrecondition) as caught:
        _merge(service, "other", BRANCH)
    assert caught.value.reason == "MERGE_CONFLICT"
    (conflict,) = caught.value.details
    assert (conflict.key, conflict.path, conflict.ours, conflict.theirs) == (
        "objects/Employee/e1",
        "level",
        2,
        3,
    )
    resolution = Resolution("objects/Employee/e1", "level", Choice.THEIRS)
    _merge(service, "other", BRANCH, resolutions=[resolution])
    assert forked.get(BRANCH, "Employee", "e1").values["level"] == 3


def test_a_merge_whose_links_break_cardinality_is_refused(forked, service) -> None:
    _link(forked, "worksIn", "e1", "o1")
    _link(forked, "worksIn", "e1", "o2", branch="other")
    with pytest.raises(errors.FailedPrecondition) as caught:
        _merge(service, "other", BRANCH)
    assert caught.value.reason == "MERGE_INVALID"
    assert [(v.field, v.reason) for v in caught.value.violations] == [
        ("links/worksIn/e1/o2", "CARDINALITY")
    ]


def test_object_writes_emit_their_events(objects, store) -> None:
    _employee(objects, "e1")
    _office(objects, "o1")
    _link(objects, "worksIn", "e1", "o1")
    objects.update(
        ADMIN, BRANCH, "Employee", "e1", {"level": 4}, mask=["level"], etag="", message=""
    )
    objects.delete(ADMIN, BRANCH, "Employee", "e1", etag="", delete_links=True, message="")
    with store.db.read() as conn:
        rows = conn.execute(sa.select(outbox.c.type, outbox.c.data).order_by(outbox.c.seq)).all()
    events = [(t, json.loads(d)) for t, d in rows if t.startswith(("oms.object", "oms.link"))]
    assert [t for t, _ in events] == [
        "oms.object.created",
        "oms.object.created",
        "oms.link.created",
        "oms.object.updated",
        "oms.link.deleted",
        "oms.object.deleted",
    ]
    assert events[3][1]["fields"] == ["level"]
    assert events[2][1] | {"commit": "", "client_address": ""} == {
        "branch": BRANCH,
        "commit": "",
        "client_address": "",
        "link_type": "worksIn",
        "from": "e1",
        "to": "o1",
    }


def _batch(service: OntologyService, *edits: Edit, branch: str = BRANCH):
    return commit_as_admin(service, branch, list(edits), "batch")


def test_a_batch_changes_schema_and_data_in_one_commit(service, objects, store) -> None:
    team = object_type("Team", prop("size", "integer"))
    member = link_type("memberOf", "Employee", "Team", "MANY_TO_ONE")
    commit = _batch(
        service,
        Edit("object-types/Team", team),
        Edit("", {"id": "t1", "size": 3}, object_type="Team"),
        Edit("", {"id": "e1", "name": "Ann"}, object_type="Employee"),
        Edit("links/memberOf/e1/t1", {"from": "e1", "to": "t1"}),
        Edit("link-types/memberOf", member),
    )
    assert [k for k, _ in store.changes_in(commit.id, limit=10)[0]] == [
        "link-types/memberOf",
        "links/memberOf/e1/t1",
        "object-types/Team",
        "objects/Employee/e1",
        "objects/Team/t1",
    ]
    assert objects.get(BRANCH, "Team", "t1", revision=commit.id).values == {"id": "t1", "size": 3}


def test_a_batch_reports_every_data_violation_by_change(service, objects) -> None:
    _employee(objects, "e1")
    head = service.store.branch(BRANCH).head
    reason, violations = _refused(
        _batch,
        service,
        Edit("", {"id": "e2", "level": "x"}, object_type="Employee"),
        Edit("", {"id": "g1"}, object_type="Ghost"),
        Edit("links/worksIn/e1/o9", {"from": "e1", "to": "o9"}),
        Edit("objects/Employee/e7", None),
        Edit("objects/Employee", None),
    )
    assert reason == "INVALID_ARGUMENT"
    assert sorted(violations) == [
        ("changes[0].object.properties.level", "INVALID_TYPE"),
        ("changes[0].object.properties.name", "REQUIRED"),
        ("changes[1].object.object_type", "UNKNOWN_TYPE"),
        ("changes[2].link.to_primary_key", "OBJECT_NOT_FOUND"),
        ("changes[3].delete", "NOT_FOUND"),
        ("changes[4]", "INVALID_VALUE"),
    ]
    assert service.store.branch(BRANCH).head == head


def test_a_batch_deleting_a_linked_object_must_delete_its_links(two_of_each, service) -> None:
    _link(two_of_each, "worksIn", "e1", "o1")
    assert _refused(_batch, service, Edit("objects/Office/o1", None)) == (
        "INVALID_ARGUMENT",
        [("changes[0].delete", "OBJECT_LINKED")],
    )
    _batch(service, Edit("objects/Office/o1", None), Edit("links/worksIn/e1/o1", None))


def test_a_batch_with_objects_needs_object_write(service) -> None:
    schema_only = dataclasses.replace(ADMIN, permissions=frozenset({"schema:write"}))
    with pytest.raises(errors.PermissionDenied):
        service.commit_changes(
            schema_only,
            BRANCH,
            [Edit("", {"id": "e1", "name": "Ann"}, object_type="Employee")],
            message="m",
            expected_head="",
            force=Force(),
        )


def _changed_employee(service: OntologyService, branch: str = BRANCH, **changes: Any):
    """The Employee type with some properties redefined (by name)."""
    employee = dict(service.get(branch, "object-types", "Employee").resource)
    employee["properties"] = [
        {**p, **changes.get(p["api_name"], {})} for p in employee["properties"]
    ]
    return Edit("object-types/Employee", employee)


def test_a_schema_change_the_data_would_violate_is_refused_with_counts(objects, service) -> None:
    for i in range(7):
        _employee(
            objects, f"e{i}", grade="senior" if i < 3 else "junior", salary="1" if i < 2 else None
        )
    edit = _changed_employee(
        service,
        level={"required": True},
        grade={"enum_values": ["junior"]},
        salary={"unique": True},
    )
    with pytest.raises(errors.FailedPrecondition) as caught:
        _batch(service, edit)
    assert caught.value.reason == "DATA_VIOLATES_SCHEMA"
    found = {v.reason: v.description for v in caught.value.violations}
    assert found.keys() == {"ENUM_VALUE", "REQUIRED", "UNIQUE"}
    assert found["UNIQUE"].startswith('2 Employee object(s) would violate it, e.g. ["e0", "e1"]')
    assert found["REQUIRED"].startswith('7 Employee object(s) would violate it, e.g. ["e0", "e1"')
    assert found["ENUM_VALUE"].startswith(
        '3 Employee object(s) would violate it, e.g. ["e0", "e1", "e2"]'
    )
    with pytest.raises(errors.FailedPrecondition) as deleted:
        service.delete(ADMIN, BRANCH, "object-types", "Office", etag="", message="")
    assert deleted.value.reason == "RESOURCE_IN_USE"  # its link types come first
    _batch(service, _changed_employee(service, level={"description": "unchecked"}))


def test_a_merge_whose_schema_the_other_sides_objects_violate_is_refused(forked, service) -> None:
    _employee(forked, "e2", branch=BRANCH)
    _batch(service, _changed_employee(service, "other", level={"required": True}), branch="other")
    with pytest.raises(errors.FailedPrecondition) as caught:
        _merge(service, "other", BRANCH)
    assert caught.value.reason == "MERGE_INVALID"
    (violation,) = caught.value.violations
    assert violation.field == "object-types/Employee" and '["e2"]' in violation.description


def test_validation_counts_the_objects_a_change_would_meet(objects, service) -> None:
    service.create_branch(ADMIN, "other", source=BRANCH, base_branch=BRANCH, compatibility_mode="")
    _batch(service, _changed_employee(service, "other", level={"required": True}), branch="other")
    for pk in ("e1", "e2", "e3"):
        _employee(objects, pk, level=1 if pk == "e2" else None)
    result = service.validate(ADMIN, "other", against=BRANCH, mode="")
    assert not result.passed
    assert [(a.resource, a.reason, a.count, a.examples) for a in result.affected] == [
        ("object-types/Employee", "REQUIRED", 2, ("e1", "e3"))
    ]
