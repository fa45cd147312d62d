"""Bytes that are not UTF-8 in any path or query field of the REST surface: a 400, never a 500.

The 400 names the field.

The transcoder passes percent-decoded values through as they are; protobuf refuses the whole
message when a string field is not UTF-8. Every operation of the OpenAPI document is tried,
one field at a time, the others holding an ordinary value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from gateway.envoy import OPENAPI_PATH

BAD = "%FF%FE"
STREAMS = {"/api/v2/events:subscribe"}
"""Answered as server-sent events; its refusal comes before the stream opens all the same."""


def _cases() -> Iterator[tuple[str, str, str, str]]:
    """(method, url, field, where) for every path and query field of every operation."""
    document = json.loads(OPENAPI_PATH.read_text())
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            path_names = [p["name"] for p in parameters if p["in"] == "path"]
            for parameter in parameters:
                if parameter["in"] not in ("path", "query"):
                    continue
                name = parameter["name"]
                url = template
                for other in path_names:
                    url = url.replace("{" + other + "}", BAD if other == name else "x")
                if parameter["in"] == "query":
                    url += f"?{name}={BAD}"
                field = parameter.get("x-field", name)  # the request field the path fills
                yield method.upper(), url, field, parameter["in"]


CASES = list(_cases())


def test_every_path_and_query_field_of_the_document_is_covered() -> None:
    assert len(CASES) > 40
    assert {where for *_, where in CASES} == {"path", "query"}


@pytest.mark.parametrize(("method", "url", "field", "where"), CASES)
def test_invalid_utf8_is_400(
    client: httpx.Client, admin: dict[str, str], method: str, url: str, field: str, where: str
) -> None:
    content = b"{}" if method in ("POST", "PATCH", "PUT") else None
    response = client.request(method, url, headers=admin, content=content, timeout=10)
    assert response.status_code == 400, f"{method} {url}: {response.status_code} {response.text}"
    body = response.json()
    assert body["code"] == 3
    violations = [
        v
        for detail in body["details"]
        if detail["@type"].endswith("google.rpc.BadRequest")
        for v in detail["field_violations"]
    ]
    # A string field reaches the service, which names it; a number, time or enum field is
    # refused by the transcoder itself while parsing it.
    if violations:
        assert violations[0]["reason"] == "INVALID_UTF8"
        assert violations[0]["field"].startswith(field)
