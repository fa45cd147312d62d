"""The gateway's tables cover every REST route, with patterns that match it."""

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


def test_every_binding_has_its_route_and_bodies_are_checked_whole_or_by_field() -> None:
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
    }
    assert set(routes) == expected
    assert len(routes) == len(expected)
    checked = re.findall(r'\{pattern = "[^"]+", message = "[^"]+", (whole|field)', script)
    with_body = [
        b
        for s in services
        for m in s.methods
        if not m.client_streaming
        for b in m.bindings
        if b.body
    ]
    raw = [b for b in with_body if b.template in ("/oauth/token", "/oauth/introspect")]
    assert (
        len(raw) == 2
    )  # forms, bound to a google.api.HttpBody: the service reads it, not the check
    assert len(checked) == len(with_body) - len(raw)
    messages = set(re.findall(r'^  \["([\w.]+)"\] = \{names', script, re.MULTILINE))
    assert {"oms.v1.ObjectType", "oms.v1.Property", "audit.v1.Event"} <= messages
    assert "google.protobuf.Timestamp" not in messages  # a string in JSON, checked as one
