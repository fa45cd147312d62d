"""ExecuteAction through the service on a real store: checks, criteria, atomic edits, events."""

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
from oms.service import Edit, OntologyService
from oms.sql_store import SqlStore, outbox
from tests.support.oms import ADMIN_PRINCIPAL as ADMIN
from tests.support.oms import commit_as_admin
from tests.support.ontology import action_type, link_type, object_param, object_type, param, prop

BRANCH = "dev"
PROMOTE_CRITERIA = [
    {
        "parameter": "employee",
        "property": "grade",
        "operator": "=",
        "value": "junior",
        "message": "only juniors are promoted",
    },
    {"parameter": "level", "operator": "<=", "value": 10, "message": "levels stop at 10"},
    {"caller_role": "admin", "message": "admins promote"},
]


def _schema() -> list[Edit]:
    employee = object_type(
        "Employee",
        prop("name", required=True),
        prop("level", "integer"),
        prop("grade", enum_values=["junior", "senior"]),
    )
    actions = [
        action_type(
            "promote",
            [
                object_param("employee", "Employee", required=True),
                param("level", "integer", required=True),
            ],
            [
                {
                    "kind": "MODIFY_OBJECT",
                    "object_type": "Employee",
                    "object_parameter": "employee",
                    "values": {"level": "level"},
                }
            ],
            submission_criteria=PROMOTE_CRITERIA,
        ),
        action_type(
            "hire",
            [param("id", required=True), param("name", required=True)],
            [
                {
                    "kind": "CREATE_OBJECT",
                    "object_type": "Employee",
                    "values": {"id": "id", "name": "name"},
                }
            ],
            permission="hr:hire",
        ),
        action_type(
            "assign",
            [object_param("employee", "Employee"), object_param("office", "Office")],
            [
                {
                    "kind": "CREATE_LINK",
                    "link_type": "worksIn",
                    "values": {"from": "employee", "to": "office"},
                }
            ],
        ),
        action_type(
            "fire",
            [object_param("employee", "Employee")],
            [{"kind": "DELETE_OBJECT", "object_type": "Employee", "object_parameter": "employee"}],
        ),
    ]
    return [
        Edit("object-types/Employee", employee),
        Edit("object-types/Office", object_type("Office")),
        Edit("link-types/worksIn", link_type("worksIn", "Employee", "Office", "MANY_TO_ONE")),
        *(Edit(f"action-types/{a['api_name']}", a) for a in actions),
    ]


@pytest.fixture
def store(tmp_path):
    store = SqlStore(Database(f"sqlite:///{tmp_path / 'oms.db'}"))
    yield store
    store.close()


@pytest.fixture
def objects(store) -> ObjectService:
    service = OntologyService(store)
    service.create_branch(ADMIN, BRANCH, source="main", base_branch="", compatibility_mode="")
    commit_as_admin(service, BRANCH, _schema(), "schema")
    objects = ObjectService(service)
    objects.create(
        ADMIN, BRANCH, "Employee", {"id": "e1", "name": "Ann", "level": 1, "grade": "junior"}, ""
    )
    objects.create(ADMIN, BRANCH, "Office", {"id": "o1"}, "")
    objects.create(ADMIN, BRANCH, "Office", {"id": "o2"}, "")
    return objects


def _run(objects: ObjectService, action: str, caller=ADMIN, validate_only=False, **params: Any):
    return objects.execute_action(caller, BRANCH, action, params, validate_only=validate_only)


def _refused(objects: ObjectService, action: str, caller=ADMIN, **params: Any):
    head = objects.store.branch(BRANCH).head
    with pytest.raises(errors.MeshError) as caught:
        _run(objects, action, caller, **params)
    assert objects.store.branch(BRANCH).head == head  # nothing written
    return caught.value.reason, [(v.field, v.reason) for v in caught.value.violations]


def _events(store: SqlStore, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    with store.db.read() as conn:
        rows = conn.execute(sa.select(outbox.c.type, outbox.c.data).order_by(outbox.c.seq)).all()
    return [(t, json.loads(d)) for t, d in rows if t.startswith(prefix)]


def test_an_action_commits_its_edits_and_reports_them(objects, store) -> None:
    result = _run(objects, "promote", employee="e1", level=2)
    assert [(e.key, e.change, e.before["level"], e.after["level"]) for e in result.edits] == [
        ("objects/Employee/e1", "MODIFIED", 1, 2)
    ]
    commit = store.commit(result.commit)
    assert commit.message == "Action promote" and store.branch(BRANCH).head == commit.id
    assert objects.get(BRANCH, "Employee", "e1").values["level"] == 2
    ((kind, data),) = _events(store, "oms.action")
    assert kind == "oms.action.executed"
    assert data["commit"] == commit.id and data["parameters"] == {"employee": "e1", "level": 2}
    assert data["edits"] == {
        "created": 0,
        "modified": 1,
        "deleted": 0,
        "keys": ["objects/Employee/e1"],
    }
    assert [t for t, _ in _events(store, "oms.object.updated")] == ["oms.object.updated"]


def test_validate_only_returns_the_same_edits_and_writes_nothing(objects, store) -> None:
    head = store.branch(BRANCH).head
    dry = _run(objects, "promote", validate_only=True, employee="e1", level=2)
    assert store.branch(BRANCH).head == head and dry.commit == ""
    assert _events(store, "oms.action") == []
    assert dry.edits == _run(objects, "promote", employee="e1", level=2).edits


def test_failed_criteria_are_each_reported_and_audited(objects, store) -> None:
    editor = dataclasses.replace(ADMIN, roles=("editor",))
    objects.update(
        ADMIN, BRANCH, "Employee", "e1", {"grade": "senior"}, mask=["grade"], etag="", message=""
    )
    assert _refused(objects, "promote", editor, employee="e1", level=11) == (
        "SUBMISSION_CRITERIA_FAILED",
        [
            ("submission_criteria[0]", "CRITERION_FAILED"),
            ("submission_criteria[1]", "CRITERION_FAILED"),
            ("submission_criteria[2]", "CRITERION_FAILED"),
        ],
    )
    ((kind, data),) = _events(store, "oms.action")
    assert (kind, data["reason"]) == ("oms.action.failed", "SUBMISSION_CRITERIA_FAILED")


def test_bad_parameters_are_each_reported(objects) -> None:
    assert _refused(objects, "promote", employee="nobody", level="high", extra=1) == (
        "INVALID_ARGUMENT",
        [
            ("parameters.extra", "UNKNOWN_PARAMETER"),
            ("parameters.employee", "OBJECT_NOT_FOUND"),
            ("parameters.level", "INVALID_TYPE"),
        ],
    )
    assert _refused(objects, "promote") == (
        "INVALID_ARGUMENT",
        [("parameters.employee", "REQUIRED"), ("parameters.level", "REQUIRED")],
    )


def test_the_action_types_permission_is_required(objects) -> None:
    clerk = dataclasses.replace(ADMIN, permissions=frozenset({"action:execute"}))
    assert _refused(objects, "hire", clerk, id="e2", name="Bob")[0] == "ACTION_PERMISSION_DENIED"
    recruiter = dataclasses.replace(ADMIN, permissions=frozenset({"hr:hire"}))
    result = _run(objects, "hire", recruiter, id="e2", name="Bob")
    assert [(e.key, e.change, e.before) for e in result.edits] == [
        ("objects/Employee/e2", "ADDED", None)
    ]


def test_edits_that_break_the_data_write_nothing(objects) -> None:
    _run(objects, "assign", employee="e1", office="o1")
    assert _refused(objects, "assign", employee="e1", office="o2") == (
        "ACTION_EDITS_INVALID",
        [("links/worksIn/e1/o2.from_primary_key", "CARDINALITY")],
    )
    assert _refused(objects, "fire", employee="e1") == (
        "ACTION_EDITS_INVALID",
        [("objects/Employee/e1", "OBJECT_LINKED")],
    )
    assert _refused(objects, "hire", id="e1", name="Again") == (
        "ACTION_EDITS_INVALID",
        [("rules[0]", "ALREADY_EXISTS")],
    )
    assert _refused(objects, "nothing")[0] == "RESOURCE_NOT_FOUND"
    assert _refused(objects, "hire", id="", name="Nobody") == (
        "ACTION_EDITS_INVALID",
        [("objects/Employee/.properties.id", "REQUIRED")],
    )


def test_an_edit_past_a_mebibyte_of_json_writes_nothing(objects) -> None:
    name = "\u0001" * (MAX_RESOURCE_BYTES // 6)  # each spelled \u0001: six bytes
    for validate_only in (True, False):
        with pytest.raises(errors.MeshError) as caught:
            _run(objects, "hire", validate_only=validate_only, id="e9", name=name)
        assert caught.value.reason == "ACTION_EDITS_INVALID"
        assert [(v.field, v.reason) for v in caught.value.violations] == [
            ("objects/Employee/e9", "TOO_LARGE")
        ]
    assert _refused(objects, "hire", id="e9", name=name)[0] == "ACTION_EDITS_INVALID"


def test_parameters_nested_past_the_limit_are_refused_and_recorded(objects, store) -> None:
    deep: object = "x"
    for _ in range(MAX_NESTING):
        deep = [deep]
    assert _refused(objects, "hire", id="e9", name=deep) == (
        "INVALID_ARGUMENT",
        [("parameters", "TOO_DEEP")],
    )
    ((kind, data),) = _events(store, "oms.action")
    assert kind == "oms.action.failed" and data["reason"] == "INVALID_ARGUMENT"


def test_criteria_are_checked_when_the_action_type_is_written(store) -> None:
    service = OntologyService(store)
    service.create_branch(ADMIN, BRANCH, source="main", base_branch="", compatibility_mode="")
    bad = _schema()
    promote = dict(next(e.resource for e in bad if e.key == "action-types/promote"))
    promote["submission_criteria"] = [
        {"parameter": "ghost", "operator": "=", "message": "m"},
        {"parameter": "employee", "property": "shoe", "operator": "~", "message": "m"},
        {"caller_role": "admin", "caller_permission": "a:b", "message": ""},
        {"parameter": "level", "operator": "in", "value": 3, "message": "m"},
    ]
    edits = [e for e in bad if e.key != "action-types/promote"] + [
        Edit("action-types/promote", promote)
    ]
    with pytest.raises(errors.InvalidArgument) as caught:
        commit_as_admin(service, BRANCH, edits, "m")
    fields = sorted(v.field.split(".upsert.action_type.")[1] for v in caught.value.violations)
    assert fields == [
        "submission_criteria[0].parameter",
        "submission_criteria[1].operator",
        "submission_criteria[1].property",
        "submission_criteria[2]",
        "submission_criteria[2].message",
        "submission_criteria[3].value",
    ]


def test_a_branch_that_moved_meanwhile_aborts_the_action(objects, store, monkeypatch) -> None:
    stale = store.branch(BRANCH)
    objects.create(ADMIN, BRANCH, "Office", {"id": "o3"}, "")  # the head moves on
    monkeypatch.setattr(store, "branch", lambda name: stale)  # read before the move
    with pytest.raises(errors.Aborted) as caught:
        _run(objects, "promote", employee="e1", level=2)
    assert caught.value.reason == "BRANCH_HEAD_MOVED"
    monkeypatch.undo()
    assert objects.get(BRANCH, "Employee", "e1").values["level"] == 1
    ((kind, data),) = _events(store, "oms.action")
    assert (kind, data["reason"]) == ("oms.action.failed", "BRANCH_HEAD_MOVED")
