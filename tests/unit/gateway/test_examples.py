"""Every operation of the OpenAPI document has an example request and response.

Except the deprecated paths (their primary path has it) and the server-sent event stream,
which no single response shows; ``tests/e2e/test_examples.py`` checks them against the mesh.
"""

from __future__ import annotations

from gateway import descriptors, examples
from oms.model import COLLECTIONS
from oms.objects import LINKS, OBJECTS


def test_every_unary_operation_has_an_example() -> None:
    written = examples.load()
    missing = [
        method.grpc_path.lstrip("/")
        for service in descriptors.services(descriptors.load())
        for method in service.methods
        if method.bindings and not method.streaming and method.grpc_path.lstrip("/") not in written
    ]
    assert not missing, "no example in gateway/examples.json for:\n" + "\n".join(missing)


def test_examples_name_real_methods_and_each_has_a_response() -> None:
    methods = {
        method.grpc_path.lstrip("/")
        for service in descriptors.services(descriptors.load())
        for method in service.methods
    }
    for key, example in examples.load().items():
        assert key.partition("#")[0] in methods, key
        assert isinstance(example["response"], dict), key


def test_references_are_filled_in_the_document() -> None:
    for key, example in examples.documented(examples.load()).items():
        assert "{{" not in str(example), key


def _named_keys(value: object) -> list[str]:
    """Every ``resource`` of an example, and the key each finding's ``path`` starts with."""
    if isinstance(value, list):
        return [key for item in value for key in _named_keys(item)]
    if not isinstance(value, dict):
        return []
    found = [key for item in value.values() for key in _named_keys(item)]
    resource = value.get("resource")
    if isinstance(resource, str) and resource:
        found.append(resource)
    if "rule_id" in value and isinstance(value.get("path"), str):
        found.append(value["path"].partition(".")[0])
    return found


def test_examples_spell_resource_keys_as_the_api_does() -> None:
    kinds = {*COLLECTIONS, OBJECTS, LINKS}
    keys = _named_keys(list(examples.load().values()))
    assert keys, "the examples name no resource"
    wrong = sorted({k for k in keys if "{{" not in k and k.partition("/")[0] not in kinds})
    assert not wrong, f"keys not in the API's spelling (oms/model.py COLLECTIONS): {wrong}"
