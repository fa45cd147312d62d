"""REST bodies the transcoder would change in silence are refused at the gateway.

Each problem is named with its path, all of them at once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.mesh import EMPLOYEE


@pytest.fixture
def branch(client: httpx.Client, admin: dict[str, str]) -> str:
    name = f"strict-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/v1/branches", headers=admin, json={"name": name}).status_code == 200
    return name


def _violations(response: httpx.Response) -> list[tuple[str, str, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 3
    (info,) = [d for d in body["details"] if d["@type"].endswith("ErrorInfo")]
    assert (info["reason"], info["domain"]) == ("INVALID_REQUEST_BODY", "gateway.mesh")
    (bad,) = [d for d in body["details"] if d["@type"].endswith("BadRequest")]
    (request,) = [d for d in body["details"] if d["@type"].endswith("RequestInfo")]
    assert request["request_id"] == response.headers["x-request-id"] != ""
    return [(v["field"], v["reason"], v["description"]) for v in bad["field_violations"]]


def _create(client: httpx.Client, admin: dict[str, str], branch: str, body: Any) -> httpx.Response:
    return client.post(f"/api/v1/schemas/{branch}/object-types", headers=admin, json=body)


def test_an_unknown_field_is_refused_with_its_path_and_nothing_is_stored(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    body = {**EMPLOYEE, "descripton": "typo"}
    body["properties"] = [{**EMPLOYEE["properties"][0], "requird": True}]
    before = client.get(f"/api/v1/schemas/{branch}/object-types", headers=admin).json()
    found = sorted(_violations(_create(client, admin, branch, body)))
    assert [(f, r) for f, r, _ in found] == [
        ("object_type.descripton", "UNKNOWN_FIELD"),
        ("object_type.properties[0].requird", "UNKNOWN_FIELD"),
    ]
    assert "description" in found[0][2]  # the fields it could have meant are listed
    assert "required" in found[1][2]
    after = client.get(f"/api/v1/schemas/{branch}/object-types", headers=admin).json()
    assert after == before


def test_a_value_of_the_wrong_type_names_the_type_expected(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    body = {**EMPLOYEE, "properties": [{**EMPLOYEE["properties"][0], "required": "yes"}]}
    assert _violations(_create(client, admin, branch, body)) == [
        (
            "object_type.properties[0].required",
            "INVALID_TYPE",
            "must be true or false, not a JSON string",
        )
    ]


def test_an_unknown_enum_value_lists_the_allowed_ones(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    prop = {**EMPLOYEE["properties"][0], "data_type": {"base": "BASE_TYPE_VARCHAR"}}
    ((field, reason, description),) = _violations(
        _create(client, admin, branch, {**EMPLOYEE, "properties": [prop]})
    )
    assert (field, reason) == ("object_type.properties[0].data_type.base", "UNKNOWN_ENUM_VALUE")
    assert "BASE_TYPE_STRING" in description and "BASE_TYPE_DECIMAL" in description


def test_every_problem_is_reported_at_once(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    body = {**EMPLOYEE, "api_name": 7, "properties": {"id": {}}, "colour": "blue"}
    found = _violations(_create(client, admin, branch, body))
    assert {(f, r) for f, r, _ in found} == {
        ("object_type.api_name", "INVALID_TYPE"),
        ("object_type.properties", "INVALID_TYPE"),
        ("object_type.colour", "UNKNOWN_FIELD"),
    }


def test_a_well_formed_body_passes_in_either_spelling_of_field_names(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    camel = {
        "apiName": "Person",
        "displayName": "Person",
        "primaryKey": "id",
        "properties": [
            {"apiName": "id", "dataType": {"base": "BASE_TYPE_STRING"}, "required": True}
        ],
    }
    created = _create(client, admin, branch, camel)
    assert created.status_code == 200, created.text
    assert created.json()["primary_key"] == "id"


def test_a_body_that_is_not_json_is_refused(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    response = client.post(
        f"/api/v1/schemas/{branch}/object-types",
        headers={**admin, "content-type": "application/json"},
        content=b'{"api_name": "X",}',
    )
    ((field, reason, description),) = _violations(response)
    assert (field, reason) == ("body", "INVALID_JSON")
    assert "byte" in description


def test_bodies_of_every_service_are_checked(client: httpx.Client, admin: dict[str, str]) -> None:
    event = client.post("/api/v2/events", headers=admin, json={"id": "x", "sorce": "/typo"})
    assert [(f, r) for f, r, _ in _violations(event)] == [("event.sorce", "UNKNOWN_FIELD")]
    login = client.post("/auth/login", json={"username": "admin", "pasword": "x"})
    assert [(f, r) for f, r, _ in _violations(login)] == [("pasword", "UNKNOWN_FIELD")]


def test_a_deeply_nested_body_is_refused_without_harm(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    nested = "[" * 10_000 + "]" * 10_000
    response = client.post(
        f"/api/v1/schemas/{branch}/object-types",
        headers={**admin, "content-type": "application/json"},
        content=('{"api_name": ' + nested + "}").encode(),
    )
    ((field, reason, _),) = _violations(response)
    assert (field, reason) == ("body", "INVALID_JSON")
    assert client.get("/health").status_code == 200


def test_every_depth_of_a_value_is_stored_or_refused_by_name(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    """Past 32 levels in the body, the services' decoder refused it with no field named."""
    key, _ = EMPLOYEE["properties"]
    body = {"api_name": "body", "data_type": {"base": "BASE_TYPE_JSON"}}
    doc = {**EMPLOYEE, "api_name": "Doc", "display_name": "Doc", "properties": [key, body]}
    assert _create(client, admin, branch, doc).status_code == 200
    seen = set()
    for levels in range(15, 40):
        for opening, closing in (('{"a":', "}"), ("[", "]")):
            value = opening * levels + "1" + closing * levels
            response = client.post(
                f"/api/v1/objects/{branch}/Doc",
                headers={**admin, "content-type": "application/json"},
                content=f'{{"properties": {{"id": "d{levels}{opening}", "body": {value}}}}}',
            )
            if response.status_code == 200:
                seen.add("stored")
                continue
            assert response.status_code == 400, response.text
            details = response.json()["details"]
            (info,) = [d for d in details if d["@type"].endswith("ErrorInfo")]
            (bad,) = [d for d in details if d["@type"].endswith("BadRequest")]
            found = [(v["field"], v["reason"]) for v in bad["field_violations"]]
            if info["domain"] == "gateway.mesh":
                assert [r for _, r in found] == ["INVALID_JSON"]
            else:
                assert found == [("object", "TOO_DEEP")]
            seen.add(info["domain"])
    assert seen == {"stored", "oms.mesh", "gateway.mesh"}
    event = {"id": "deep", "source": "/x", "type": "x.y.z", "data": {"d": [[[[[[[[1]]]]]]]]}}
    for _ in range(8):  # 26 levels: past the log's 24, within the gateway's 32
        event["data"] = {"d": [event["data"]]}
    response = client.post("/api/v2/events", headers=admin, json=event)
    assert response.status_code == 400, response.text
    (bad,) = [d for d in response.json()["details"] if d["@type"].endswith("BadRequest")]
    assert [(v["field"], v["reason"]) for v in bad["field_violations"]] == [
        ("event.data", "TOO_DEEP")
    ]


def test_u0000_in_a_string_field_is_refused_by_name_and_kept_in_a_json_value(
    client: httpx.Client, admin: dict[str, str], branch: str
) -> None:
    """PostgreSQL cannot store it in a text column; every service refuses it, on any store."""
    refused = {
        ("/api/v1/tags", "message"): {"name": f"{branch}-t", "target": branch, "message": "\x00"},
        ("/api/v1/roles", "role.description"): {"name": "nul", "description": "a\x00b"},
        ("/api/v2/events", "event.subject"): {
            "id": "n",
            "source": "/x",
            "type": "x.y.z",
            "subject": "\x00",
        },
        ("/auth/login", "username"): {"username": "admin\x00", "password": "x"},
    }
    for (path, field), body in refused.items():
        response = client.post(path, headers=admin, json=body)
        assert response.status_code == 400, f"{path}: {response.text}"
        (bad,) = [d for d in response.json()["details"] if d["@type"].endswith("BadRequest")]
        found = [(v["field"], v["reason"]) for v in bad["field_violations"]]
        assert found == [(field, "INVALID_CHARACTERS")], path
    assert client.get(f"/api/v1/tags/{branch}-t", headers=admin).status_code == 404
    roles = client.get("/api/v1/roles", headers=admin).json()["roles"]
    assert "nul" not in {r["name"] for r in roles}
    event = {"id": "nul-data", "source": "/x", "type": "x.y.z", "data": {"k\x00": "v\x00"}}
    stored = client.post("/api/v2/events", headers=admin, json=event)
    assert stored.status_code == 200, stored.text
    assert stored.json()["data"] == {"k\x00": "v\x00"}


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.dictionaries(st.text(max_size=8), _JSON, max_size=5), ascii_only=st.booleans())
def test_the_gateway_reads_any_json_as_json(
    client: httpx.Client, admin: dict[str, str], data: dict[str, Any], ascii_only: bool
) -> None:
    """The body check reads any JSON a client writes as JSON does.

    Escapes, surrogate pairs, exponents: none of it is refused as malformed.
    """
    event = {"id": str(uuid.uuid4()), "source": "/fuzz", "type": "fuzz.json.sent", "data": data}
    body = json.dumps(event, ensure_ascii=ascii_only).encode()
    response = client.post(
        "/api/v2/events", headers={**admin, "content-type": "application/json"}, content=body
    )
    if response.status_code == 400:
        details = response.json()["details"]
        reasons = [v["reason"] for d in details for v in d.get("field_violations", [])]
        assert "INVALID_JSON" not in reasons, response.text
        assert "UNKNOWN_FIELD" not in reasons and "INVALID_TYPE" not in reasons, response.text


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "a",}',
        '{"id": "a"',
        "{\"id\": 'a'}",
        '{"id": "a" "source": "b"}',
        '{"id": 01}',
        '{"id": "\\x41"}',
        '{"id": "a\nb"}',
        '{"id": tru}',
        '{"id": "a"} trailing',
        "[1, 2,]",
        '{"id": NaN}',
    ],
)
def test_malformed_json_is_refused_as_such(
    client: httpx.Client, admin: dict[str, str], text: str
) -> None:
    response = client.post(
        "/api/v2/events",
        headers={**admin, "content-type": "application/json"},
        content=text.encode(),
    )
    assert [(f, r) for f, r, _ in _violations(response)] == [("body", "INVALID_JSON")]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/branches", "GET, POST"),
        ("PUT", "/api/v2/events", "POST"),
        ("POST", "/.well-known/jwks.json", "GET"),
        ("GET", "/auth/login", "POST"),
    ],
)
def test_a_known_path_with_a_wrong_method_is_405_with_allow(
    client: httpx.Client, admin: dict[str, str], method: str, path: str, allow: str
) -> None:
    response = client.request(method, path, headers=admin)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    body = response.json()
    assert body["code"] == 12 and body["details"][0]["reason"] == "METHOD_NOT_ALLOWED"


def test_an_unknown_path_is_still_404(client: httpx.Client, admin: dict[str, str]) -> None:
    assert client.delete("/api/v1/no-such-thing", headers=admin).status_code == 404
