"""Every example of the OpenAPI document is true: replayed against the running mesh in order.

Each answer must be 200, valid under the operation's response schema, and of the example's
shape (the same fields, all the way down); ids and times naturally differ.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

from gateway import examples
from gateway.envoy import OPENAPI_PATH
from tests.support.examples import replay


def shape(value: Any) -> Any:
    """What an example and a real answer must share: types and field names, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def _same_shape(example: Any, real: Any) -> bool:
    """Whether ``real`` has the fields and types of ``example``, all the way down.

    Lists may differ in length (other tests share the mesh): the first items of two non-empty
    ones are compared, and an empty one matches any.
    """
    if isinstance(example, dict) and isinstance(real, dict):
        return example.keys() == real.keys() and all(
            _same_shape(example[key], real[key]) for key in example
        )
    if isinstance(example, list) and isinstance(real, list):
        return not example or not real or _same_shape(example[0], real[0])
    return shape(example) == shape(real)


def test_every_example_is_what_the_mesh_answers(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    components = document["components"]
    failures: list[str] = []
    for done in replay(client, document, admin, examples.load(), suffix=uuid.uuid4().hex[:8]):
        if done.response.status_code != 200:
            failures.append(f"{done.method}: {done.response.status_code} {done.response.text}")
            break  # the examples after it depend on it
        real = done.response.json()
        spec = done.operation.spec["responses"]["200"]["content"]["application/json"]["schema"]
        validator = OAS30Validator({"allOf": [spec], "components": components})
        failures += [f"{done.method}: {error.message}" for error in validator.iter_errors(real)]
        if not _same_shape(done.example["response"], real):
            failures.append(f"{done.method}: answered {shape(real)}")
    assert not failures, "\n".join(failures)
