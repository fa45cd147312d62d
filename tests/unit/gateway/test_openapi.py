"""The OpenAPI document follows the HTTP rules and the transcoder's JSON forms."""

from __future__ import annotations

import re
from typing import Any

import pytest

from common.permissions import Permission
from gateway import descriptors, openapi


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    descriptor_set = descriptors.load()
    return openapi.build(descriptor_set, descriptors.services(descriptor_set))


def test_path_templates() -> None:
    assert openapi._path("/users/{user_id}") == ("/users/{user_id}", [("user_id", "user_id")])
    assert openapi._path("/api/v2/{name=events/*}") == (
        "/api/v2/events/{event}",
        [("event", "name")],
    )
    assert openapi._path("/v1/users/{user.user_id}") == (
        "/v1/users/{user_id}",
        [("user_id", "user.user_id")],
    )
    assert openapi._path("/v1/{name=a/*/a/*}:run") == (
        "/v1/a/{a}/a/{a_2}:run",
        [("a", "name"), ("a_2", "name")],
    )
    assert openapi._path("/v1/objects/{branch}/{object_type}/{primary_key}")[0] == (
        "/v1/objects/{branch}/{object_type}/{primary_key}"
    )


def test_a_path_parameter_is_named_for_what_it_identifies_whatever_field_binds_it() -> None:
    """One name per kind of thing: ``{branch}``, never ``{name}`` or ``{branch_name}``."""
    templates = {
        "/api/v1/branches/{name}": "/api/v1/branches/{branch}",
        "/api/v1/branches/{branch.name}": "/api/v1/branches/{branch}",
        "/api/v1/branches/{branch}/merge": "/api/v1/branches/{branch}/merge",
        "/api/v1/schemas/{branch}/object-types/{api_name}": (
            "/api/v1/schemas/{branch}/object-types/{object_type}"
        ),
        "/api/v1/schemas/{branch}/object-types/{object_type.api_name}": (
            "/api/v1/schemas/{branch}/object-types/{object_type}"
        ),
        "/api/v1/schemas/{branch}/shared-properties/{api_name}": (
            "/api/v1/schemas/{branch}/shared-properties/{shared_property}"
        ),
    }
    for template, path in templates.items():
        assert openapi._path(template)[0] == path, template


def test_one_path_is_one_operation_per_verb_with_one_set_of_names(
    document: dict[str, Any],
) -> None:
    for path, operations in document["paths"].items():
        for operation in operations.values():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), (path, named)


def test_every_http_binding_is_documented(document: dict[str, Any]) -> None:
    for service in descriptors.services(descriptors.load()):
        for method in service.methods:
            for binding in method.bindings:
                path, _ = openapi._path(binding.template)
                assert binding.verb in document["paths"][path], (method.grpc_path, path)


def test_json_forms_of_the_transcoder(document: dict[str, Any]) -> None:
    event = document["components"]["schemas"]["audit.v1.Event"]["properties"]
    assert event["sequence"]["type"] == "string"  # int64
    assert event["time"]["format"] == "date-time"
    assert event["data"]["type"] == "object"  # Struct
    login = document["paths"]["/auth/login"]["post"]
    assert login["security"] == []
    assert "security" not in document["paths"]["/api/v1/roles"]["get"]
    assert document["security"] == [{"bearer": []}]


def test_query_parameters_and_streams(document: dict[str, Any]) -> None:
    query = document["paths"]["/api/v2/query/events"]["get"]
    names = {p["name"] for p in query["parameters"]}
    assert {
        "type",
        "source",
        "subject",
        "actor",
        "start_time",
        "end_time",
        "page_size",
        "page_token",
    } <= names
    subscribe = document["paths"]["/api/v2/events:subscribe"]["get"]
    assert "text/event-stream" in subscribe["responses"]["200"]["content"]
    assert document["paths"]["/health"]["get"]["security"] == []


def test_field_behaviors_mark_required_and_read_only_fields() -> None:
    document = openapi.build(descriptors.load(), descriptors.services(descriptors.load()))
    event = document["components"]["schemas"]["audit.v1.Event"]
    assert event["required"] == ["id", "source", "type"]
    read_only = {name for name, schema in event["properties"].items() if schema.get("readOnly")}
    assert read_only == {"name", "sequence", "recorded_time", "hash", "previous_hash"}
    assert "readOnly" not in event["properties"]["id"]


def test_every_operation_names_the_permission_it_needs(document: dict[str, Any]) -> None:
    known = {p.value for p in Permission} | {"public", "authenticated"}
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    assert {op["x-permission"] for op in operations} <= known
    for op in operations:
        assert (op["x-permission"] == "public") == (op.get("security") == []), op["operationId"]
    validate = document["paths"]["/api/v1/validation/check"]["post"]
    assert validate["x-permission"] == "schema:read"
    assert validate["description"].endswith("Needs the `schema:read` permission.")
    merge = document["paths"]["/api/v1/branches/{branch}/merge"]["post"]
    assert merge["x-permission"] == "branch:merge"
    assert document["paths"]["/auth/password:change"]["post"]["x-permission"] == "authenticated"


def test_an_older_path_still_bound_is_marked_deprecated_with_its_successor(
    document: dict[str, Any],
) -> None:
    old = document["paths"]["/v1/users"]["post"]
    assert old["deprecated"] is True
    assert old["description"].endswith("Deprecated: use `POST /api/v1/users`.")
    assert "deprecated" not in document["paths"]["/api/v1/users"]["post"]
    prefixes = {path.split("/")[1] for path in document["paths"]}
    assert prefixes == {"api", "auth", "users", "v1", ".well-known", "oauth", "health"}
    assert all(
        op.get("deprecated")
        for path, ops in document["paths"].items()
        if path.startswith("/v1/")
        for op in ops.values()
    )
