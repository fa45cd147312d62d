"""Every mutating RPC of the mesh, read from the descriptor set, declares the events it emits.

A mutating RPC is one whose name does not start with a read verb (``Method.mutating``); each
service's ``EVENTS``, beside its ``POLICIES``, maps RPCs to event types. The integration
tests (``tests/integration/*/test_recorded.py``) check the mapping against real servers.
"""

from __future__ import annotations

import pytest

from audit import servicers as audit_servicers
from gateway import descriptors
from oms import servicers as oms_servicers
from users import servicers as users_servicers

EVENTS = {
    "users": users_servicers.EVENTS,
    "oms": oms_servicers.EVENTS,
    "audit": audit_servicers.EVENTS,
}
METHODS = [
    method for service in descriptors.services(descriptors.load()) for method in service.methods
]


@pytest.mark.parametrize("method", [m for m in METHODS if m.mutating], ids=lambda m: m.grpc_path)
def test_a_mutating_rpc_has_event_types(method: descriptors.Method) -> None:
    declared = EVENTS[method.service.split(".")[0]].get(method.grpc_path, ())
    assert declared, f"{method.grpc_path} changes state but declares no event type"


def test_the_mappings_name_only_real_rpcs_and_well_formed_types() -> None:
    paths = {m.grpc_path for m in METHODS}
    for backend, table in EVENTS.items():
        for path, types in table.items():
            assert path in paths, path
            for event_type in types:
                assert event_type in (
                    audit_servicers.PUBLISHED,
                    audit_servicers.SIGNED,
                ) or event_type.startswith(f"{backend}."), event_type


def test_the_rule_sorts_the_rpcs_as_the_docs_say() -> None:
    mutating = {m.name for m in METHODS if m.mutating}
    assert {"Login", "RotateSigningKey", "UpdateBranch", "MergeBranch", "PublishEvents"} <= (
        mutating
    )
    assert not mutating & {"ValidateToken", "WatchRevocations", "DiffRefs", "VerifyLog", "GetJwks"}
