"""Bytes that are not UTF-8, or U+0000, in any path or query field of the REST surface: a 400.

Never a 500; the 400 names the field where the services answer it.

The transcoder passes percent-decoded values through as they are; protobuf refuses the whole
message when a string field is not UTF-8, and PostgreSQL a text value holding U+0000, so the
services refuse either before anything is read or written. Every operation of the OpenAPI
document is tried, one field at a time, the others holding an ordinary value. Envoy itself
refuses U+0000 in a path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from gateway.envoy import OPENAPI_PATH

BAD = {"%FF%FE": "INVALID_UTF8", "%00": "INVALID_CHARACTERS"}
"""Each way to spoil a field, and the reason the services give for it."""
STREAMS = {"/api/v2/events:subscribe"}
"""Answered as server-sent events; its refusal comes before the stream opens all the same."""


def _cases(bad: str) -> Iterator[tuple[str, str, str, str]]:
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
                    url = url.replace("{" + other + "}", bad if other == name else "x")
                if parameter["in"] == "query":
                    url += f"?{name}={bad}"
                field = parameter.get("x-field", name)  # the request field the path fills
                yield method.upper(), url, field, parameter["in"]


CASES = [(bad, *case) for bad in BAD for case in _cases(bad)]


def test_every_path_and_query_field_of_the_document_is_covered() -> None:
    assert len(CASES) > 2 * 40
    assert {where for *_, where in CASES} == {"path", "query"}


@pytest.mark.parametrize(("bad", "method", "url", "field", "where"), CASES)
def test_a_spoilt_field_is_400(
    client: httpx.Client,
    admin: dict[str, str],
    bad: str,
    method: str,
    url: str,
    field: str,
    where: str,
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
        assert violations[0]["reason"] == BAD[bad]
        assert violations[0]["field"].startswith(field)
