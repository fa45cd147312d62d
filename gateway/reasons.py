"""Every ErrorInfo reason each RPC of the mesh can answer: its service's own and the runtime's.

Each service declares, beside ``POLICIES``, the reasons its RPCs answer beyond
:mod:`common.reasons` (``REASONS``); which of the runtime's apply follows from the RPC's
policy and whether it streams. The OpenAPI document lists them per operation, and the tests
hold the declaration to the code (``tests/support/reasons.py``, ``tests/unit/gateway/
test_reasons.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import reasons as runtime
from common.interceptors import Policy
from gateway import descriptors
from gateway.descriptors import Method


@dataclass(frozen=True)
class Reasons:
    """An RPC's reasons: its own (from its service's ``REASONS``) and the runtime's."""

    own: tuple[str, ...]
    runtime: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(sorted({*self.own, *self.runtime}))


def tables() -> tuple[dict[str, Policy], dict[str, tuple[str, ...]]]:
    """The services' ``POLICIES`` and ``REASONS``, joined, by gRPC path."""
    from audit import servicers as audit
    from oms import servicers as oms
    from users import servicers as users

    policies = {**users.POLICIES, **oms.POLICIES, **audit.POLICIES}
    return policies, {**users.REASONS, **oms.REASONS, **audit.REASONS}


def of(method: Method, policy: Policy | None, own: tuple[str, ...]) -> Reasons:
    """The reasons of ``method``, whose policy is ``policy`` and own reasons ``own``."""
    common = set(runtime.EVERY_CALL)
    if policy is not None and not policy.public:
        common.update(runtime.TOKEN)
        if not method.service.startswith("users."):
            common.update(runtime.REMOTE_TOKEN)
        if policy.permission is not None:
            common.update(runtime.PERMISSION)
        if policy.ticket is not None:
            common.update(runtime.TICKET)
    if method.streaming:
        common.update(runtime.STREAM)
    return Reasons(own=tuple(sorted(own)), runtime=tuple(sorted(common)))


def declared() -> dict[str, Reasons]:
    """The reasons of every RPC of the mesh, by gRPC path."""
    policies, own = tables()
    return {
        method.grpc_path: of(method, policies.get(method.grpc_path), own.get(method.grpc_path, ()))
        for service in descriptors.services(descriptors.load())
        for method in service.methods
    }
