"""Standard methods of every collection over a real server: checks, etags, revisions, batches."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from oms.v1 import resources_pb2 as r
from oms.v1 import schema_service_pb2 as ss
from tests.support.errors import details, reason
from tests.support.oms import object_type, prop


def test_object_type_round_trip_with_defaults(oms):
    created = oms.create("main", object_type("Employee", prop("email", required=True)))
    assert created.status == r.OBJECT_TYPE_STATUS_ACTIVE
    assert created.etag
    got = oms.get("main", "Employee")
    assert got == created
    assert [p.api_name for p in got.properties] == ["id", "name", "email"]
    assert got.properties[2].required


def test_every_problem_of_a_bad_definition_is_reported(oms):
    bad = r.ObjectType(
        api_name="employee",
        primary_key="missing",
        properties=[
            prop("id"),
            prop("id"),
            r.Property(api_name="Bad Name", data_type=r.DataType(base=r.BASE_TYPE_STRING)),
        ],
        interfaces=["NoSuchInterface"],
    )
    with pytest.raises(grpc.RpcError) as caught:
        oms.create("main", bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in details(caught.value)["BadRequest"][0].field_violations]
    assert "object_type.api_name" in fields
    assert "object_type.primary_key" in fields
    assert any(f.startswith("object_type.properties[1]") for f in fields)
    assert any(f.startswith("object_type.properties[2]") for f in fields)
    assert any(f.startswith("object_type.interfaces") for f in fields)
    assert oms.names("main") == []


def test_create_twice_is_already_exists(oms):
    oms.create("main", object_type("Employee"))
    with pytest.raises(grpc.RpcError) as caught:
        oms.create("main", object_type("Employee"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_update_with_mask_and_etag(oms):
    created = oms.create("main", object_type("Employee"))
    change = r.ObjectType(api_name="Employee", description="A person we pay", etag=created.etag)
    updated = oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="main",
            object_type=change,
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=oms.admin,
    )
    assert updated.description == "A person we pay"
    assert [p.api_name for p in updated.properties] == ["id", "name"]
    assert updated.etag != created.etag
    with pytest.raises(grpc.RpcError) as stale:
        oms.schema.UpdateObjectType(
            ss.UpdateObjectTypeRequest(
                branch="main",
                object_type=change,
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=oms.admin,
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert reason(stale.value) == "ETAG_MISMATCH"
    with pytest.raises(grpc.RpcError) as bad_mask:
        oms.schema.UpdateObjectType(
            ss.UpdateObjectTypeRequest(
                branch="main",
                object_type=r.ObjectType(api_name="Employee"),
                update_mask=field_mask_pb2.FieldMask(paths=["api_name", "nope"]),
            ),
            metadata=oms.admin,
        )
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(details(bad_mask.value)["BadRequest"][0].field_violations) == 2


def test_update_of_a_missing_resource_is_not_found(oms):
    with pytest.raises(grpc.RpcError) as caught:
        oms.schema.UpdateObjectType(
            ss.UpdateObjectTypeRequest(branch="main", object_type=object_type("Ghost")),
            metadata=oms.admin,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_every_collection_supports_the_standard_methods(oms):
    oms.branch("work")
    oms.create("work", object_type("Employee"))
    oms.create("work", object_type("Company"))
    specs = [
        (
            "SharedProperty",
            "shared_property",
            r.SharedProperty(
                api_name="emailAddress", data_type=r.DataType(base=r.BASE_TYPE_STRING)
            ),
            "display_name",
        ),
        (
            "Interface",
            "interface",
            r.Interface(api_name="Named", properties=[prop("name")]),
            "description",
        ),
        (
            "LinkType",
            "link_type",
            r.LinkType(
                api_name="worksFor",
                from_object_type="Employee",
                to_object_type="Company",
                cardinality=r.CARDINALITY_MANY_TO_ONE,
            ),
            "description",
        ),
        (
            "ActionType",
            "action_type",
            r.ActionType(
                api_name="renameEmployee",
                parameters=[
                    r.ActionParameter(api_name="employee", object_type="Employee", required=True),
                    r.ActionParameter(
                        api_name="newName", data_type=r.DataType(base=r.BASE_TYPE_STRING)
                    ),
                ],
                rules=[
                    r.ActionRule(
                        kind=r.ACTION_RULE_KIND_MODIFY_OBJECT,
                        object_type="Employee",
                        object_parameter="employee",
                        values={"name": "newName"},
                    )
                ],
            ),
            "description",
        ),
    ]
    plural = {"SharedProperty": "SharedProperties"}
    for name, field, resource, masked in specs:
        many = plural.get(name, name + "s")
        create = getattr(ss, f"Create{name}Request")(branch="work", **{field: resource})
        created = getattr(oms.schema, f"Create{name}")(create, metadata=oms.admin)
        assert created.api_name == resource.api_name and created.etag

        get = getattr(ss, f"Get{name}Request")(branch="work", api_name=resource.api_name)
        assert getattr(oms.schema, f"Get{name}")(get, metadata=oms.admin) == created

        listing = getattr(oms.schema, f"List{many}")(
            getattr(ss, f"List{many}Request")(branch="work"), metadata=oms.admin
        )
        plural_field = "shared_properties" if field == "shared_property" else field + "s"
        assert [x.api_name for x in getattr(listing, plural_field)] == [resource.api_name]

        change = type(resource)(api_name=resource.api_name, etag=created.etag)
        setattr(change, masked, "changed")
        update = getattr(ss, f"Update{name}Request")(
            branch="work",
            update_mask=field_mask_pb2.FieldMask(paths=[masked]),
            **{field: change},
        )
        updated = getattr(oms.schema, f"Update{name}")(update, metadata=oms.admin)
        assert getattr(updated, masked) == "changed"

    for name, _, resource, _ in reversed(specs):
        delete = getattr(ss, f"Delete{name}Request")(branch="work", api_name=resource.api_name)
        getattr(oms.schema, f"Delete{name}")(delete, metadata=oms.admin)
        with pytest.raises(grpc.RpcError) as gone:
            get = getattr(ss, f"Get{name}Request")(branch="work", api_name=resource.api_name)
            getattr(oms.schema, f"Get{name}")(get, metadata=oms.admin)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_pages_stay_on_the_commit_of_the_first_page(oms):
    for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo"):
        oms.create("main", object_type(name))
    first = oms.schema.ListObjectTypes(
        ss.ListObjectTypesRequest(branch="main", page_size=2), metadata=oms.admin
    )
    assert [o.api_name for o in first.object_types] == ["Alpha", "Bravo"]
    oms.create("main", object_type("Baker"))
    seen = [o.api_name for o in first.object_types]
    token = first.next_page_token
    while token:
        page = oms.schema.ListObjectTypes(
            ss.ListObjectTypesRequest(branch="main", page_size=2, page_token=token),
            metadata=oms.admin,
        )
        seen += [o.api_name for o in page.object_types]
        token = page.next_page_token
    assert seen == ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    with pytest.raises(grpc.RpcError) as bad:
        oms.schema.ListObjectTypes(
            ss.ListObjectTypesRequest(branch="main", page_token="garbage"), metadata=oms.admin
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(bad.value) == "PAGE_TOKEN_INVALID"


def test_read_as_of_a_past_commit(oms):
    oms.create("main", object_type("Employee"))
    before = oms.head("main")
    oms.schema.UpdateObjectType(
        ss.UpdateObjectTypeRequest(
            branch="main",
            object_type=r.ObjectType(api_name="Employee", description="now"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=oms.admin,
    )
    oms.create("main", object_type("Company"))
    assert oms.get("main", "Employee").description == "now"
    assert oms.get("main", "Employee", revision=before).description == ""
    past = oms.schema.ListObjectTypes(
        ss.ListObjectTypesRequest(branch="main", revision=before), metadata=oms.admin
    )
    assert [o.api_name for o in past.object_types] == ["Employee"]
    with pytest.raises(grpc.RpcError) as missing:
        oms.get("main", "Employee", revision="f" * 64)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def _upsert(resource):
    field = {
        r.ObjectType: "object_type",
        r.LinkType: "link_type",
    }[type(resource)]
    return ss.Change(upsert=r.Resource(**{field: resource}))


def test_commit_changes_applies_everything_in_one_commit(oms):
    oms.branch("work")
    start = oms.head("work")
    link = r.LinkType(
        api_name="worksFor",
        from_object_type="Employee",
        to_object_type="Company",
        cardinality=r.CARDINALITY_MANY_TO_ONE,
    )
    commit = oms.schema.CommitChanges(
        ss.CommitChangesRequest(
            branch="work",
            message="Model employment",
            changes=[
                _upsert(object_type("Employee")),
                _upsert(object_type("Company")),
                _upsert(link),
            ],
        ),
        metadata=oms.admin,
    )
    assert list(commit.parents) == [start]
    assert commit.author == "admin" and commit.message == "Model employment"
    assert oms.head("work") == commit.id
    assert oms.names("work") == ["Company", "Employee"]

    with pytest.raises(grpc.RpcError) as in_use:
        oms.schema.DeleteObjectType(
            ss.DeleteObjectTypeRequest(branch="work", api_name="Company"), metadata=oms.admin
        )
    assert in_use.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(in_use.value) == "RESOURCE_IN_USE"

    removed = oms.schema.CommitChanges(
        ss.CommitChangesRequest(
            branch="work",
            message="Drop employment",
            changes=[
                ss.Change(delete="link-types/worksFor"),
                ss.Change(delete="object-types/Company"),
            ],
            expected_head=commit.id,
        ),
        metadata=oms.admin,
    )
    assert oms.names("work") == ["Employee"]
    assert list(removed.parents) == [commit.id]


def _works_for(source, target):
    return r.LinkType(
        api_name="worksFor",
        from_object_type=source,
        to_object_type=target,
        cardinality=r.CARDINALITY_MANY_TO_ONE,
    )


def _refused_batch(oms, *changes):
    """The violation fields of a batch on main that must be refused as invalid."""
    with pytest.raises(grpc.RpcError) as caught:
        oms.schema.CommitChanges(
            ss.CommitChangesRequest(branch="main", message="Broken", changes=changes),
            metadata=oms.admin,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return [v.field for v in details(caught.value)["BadRequest"][0].field_violations]


def test_commit_changes_reports_problems_by_change(oms):
    fields = _refused_batch(
        oms,
        _upsert(object_type("Employee")),
        _upsert(_works_for("Employee", "Nowhere")),
        ss.Change(delete="object-types/Ghost"),
    )
    assert "changes[2].delete" in fields
    assert "changes[1].upsert.link_type.to_object_type" in fields
    fields = _refused_batch(
        oms, _upsert(object_type("Employee")), _upsert(_works_for("Employee", "Nowhere"))
    )
    assert fields and all(f.startswith("changes[1].upsert.link_type.") for f in fields)
    assert oms.names("main") == []


def test_permissions_are_enforced(oms):
    reader = oms.metadata(("schema:read",))
    oms.create("main", object_type("Employee"))
    assert (
        oms.schema.GetObjectType(
            ss.GetObjectTypeRequest(branch="main", api_name="Employee"), metadata=reader
        ).api_name
        == "Employee"
    )
    with pytest.raises(grpc.RpcError) as denied:
        oms.schema.CreateObjectType(
            ss.CreateObjectTypeRequest(branch="main", object_type=object_type("Company")),
            metadata=reader,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as anonymous:
        oms.schema.GetObjectType(ss.GetObjectTypeRequest(branch="main", api_name="Employee"))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert oms.names("main") == ["Employee"]


def test_breaking_writes_to_protected_main_need_an_admin_force(oms):
    oms.create("main", object_type("Employee"))
    with pytest.raises(grpc.RpcError) as refused:
        oms.schema.DeleteObjectType(
            ss.DeleteObjectTypeRequest(branch="main", api_name="Employee"), metadata=oms.admin
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "BREAKING_CHANGES"
    findings = details(refused.value)["ValidationFinding"]
    assert [f.rule_id for f in findings] == ["OBJECT_TYPE_DELETED"]

    request = ss.CommitChangesRequest(
        branch="main",
        message="Retire Employee",
        changes=[ss.Change(delete="object-types/Employee")],
        force=True,
        force_reason="Replaced by Person, agreed with all consumers",
    )
    writer = oms.metadata(("schema:write", "schema:read"))
    with pytest.raises(grpc.RpcError) as not_admin:
        oms.schema.CommitChanges(request, metadata=writer)
    assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
    without_reason = ss.CommitChangesRequest()
    without_reason.CopyFrom(request)
    without_reason.force_reason = ""
    with pytest.raises(grpc.RpcError) as no_reason:
        oms.schema.CommitChanges(without_reason, metadata=oms.admin)
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert oms.names("main") == ["Employee"]

    commit = oms.schema.CommitChanges(request, metadata=oms.admin)
    assert commit.forced and commit.force_reason == request.force_reason
    assert oms.names("main") == []


def test_unknown_enum_numbers_are_rejected_not_defaulted(oms):
    bad = object_type("Employee")
    bad.status = 42
    bad.properties[1].data_type.base = 77
    with pytest.raises(grpc.RpcError) as caught:
        oms.create("main", bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in details(caught.value)["BadRequest"][0].field_violations]
    assert "object_type.status" in fields
    assert any(f.startswith("object_type.properties[1].data_type") for f in fields)


def test_a_nameless_definition_still_gets_every_violation(oms):
    nameless = r.ObjectType(primary_key="missing", properties=[prop("id"), prop("id")])
    with pytest.raises(grpc.RpcError) as caught:
        oms.create("main", nameless)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details(caught.value)["BadRequest"][0].field_violations}
    assert {"object_type.api_name", "object_type.primary_key"} <= fields
    assert "object_type.properties[1].api_name" in fields


def test_a_batch_reports_malformed_changes_and_bad_definitions_together(oms):
    fields = _refused_batch(
        oms,
        ss.Change(),
        _upsert(r.ObjectType(primary_key="id", properties=[prop("id")])),
        _upsert(_works_for("Nowhere", "Nowhere")),
    )
    assert "changes[0]" in fields
    assert "changes[1].upsert.object_type.api_name" in fields
    assert "changes[2].upsert.link_type.from_object_type" in fields
    assert oms.names("main") == []
