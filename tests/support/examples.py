"""Replaying ``gateway/examples.json`` against a running mesh through the gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from gateway import examples as ex
from tests.support.mesh import bearer


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one operation that an example is sent to."""

    verb: str
    path: str
    spec: dict[str, Any]


def operations(document: dict[str, Any]) -> dict[str, Operation]:
    """Every primary (not deprecated) operation of ``document`` by its gRPC method."""
    found: dict[str, Operation] = {}
    for path, verbs in document["paths"].items():
        for verb, spec in verbs.items():
            method = spec.get("x-grpc-method")
            if method and not spec.get("deprecated"):
                found[method] = Operation(verb, path, spec)
    return found


@dataclass
class Replayed:
    method: str
    operation: Operation
    example: dict[str, Any]
    response: httpx.Response


def replay(
    client: httpx.Client,
    document: dict[str, Any],
    admin: dict[str, str],
    examples: dict[str, dict[str, Any]],
    *,
    suffix: str,
) -> Iterator[Replayed]:
    """Send each example in order, its references filled from the real answers so far.

    Each ``{{unique:name}}`` becomes ``name`` followed by ``suffix``.
    """
    responses: dict[str, Any] = {}
    lookup = ex.resolver(
        responses, unique=lambda name: f"{name}{suffix}", now=lambda: int(time.time())
    )
    found = operations(document)
    for method, example in examples.items():
        operation = found[method.partition("#")[0]]
        filled = ex.fill({k: v for k, v in example.items() if k != "response"}, lookup)
        parameters = dict(filled.get("parameters", {}))
        url = operation.path
        for spec in operation.spec.get("parameters", []):
            if spec["in"] == "path":
                url = url.replace("{" + spec["name"] + "}", str(parameters.pop(spec["name"])))
        headers = bearer(filled["caller"]) if "caller" in filled else admin
        content = operation.spec.get("requestBody", {}).get("content", {})
        body: dict[str, Any] = {}
        if "application/json" in content:
            body["json"] = filled.get("body", {})
        elif content:
            body["data"] = filled.get("body", {})
        response = client.request(
            operation.verb.upper(), url, params=parameters, headers=headers, **body
        )
        if response.status_code == 200:
            responses[method] = response.json()
        yield Replayed(method, operation, example, response)
