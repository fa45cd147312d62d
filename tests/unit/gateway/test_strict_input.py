"""The body check's tables cover every REST route with a body, with patterns that match it."""

from __future__ import annotations

import re

import pytest

from gateway import descriptors, strict_input


@pytest.mark.parametrize(
    ("template", "pattern"),
    [
        ("/api/v1/branches", "^/api/v1/branches$"),
        ("/api/v1/schemas/{branch}/object-types", "^/api/v1/schemas/[^/]+/object%-types$"),
        ("/api/v2/{name=events/*}:inclusionProof", "^/api/v2/events/[^/]+:inclusionProof$"),
        ("/v1/{path=**}", "^/v1/.+$"),
        ("/a.b/{x}", "^/a%.b/[^/]+$"),
    ],
)
def test_templates_become_anchored_lua_patterns(template: str, pattern: str) -> None:
    assert strict_input.path_pattern(template) == pattern


def test_every_binding_with_a_body_is_checked_and_none_without() -> None:
    descriptor_set = descriptors.load()
    services = descriptors.services(descriptor_set)
    script = strict_input.render(descriptor_set, services)
    routes = re.findall(r'\{pattern = "([^"]+)", message = "([^"]+)"', script)
    expected = {
        (strict_input.path_pattern(binding.template), method.input_type)
        for service in services
        for method in service.methods
        if not method.client_streaming
        for binding in method.bindings
        if binding.body
    }
    assert set(routes) == expected
    assert len(routes) == len(expected)
    messages = set(re.findall(r'^  \["([\w.]+)"\] = \{names', script, re.MULTILINE))
    assert {"oms.v1.ObjectType", "oms.v1.Property", "audit.v1.Event"} <= messages
    assert "google.protobuf.Timestamp" not in messages  # a string in JSON, checked as one
