"""The OpenAPI document against the running gateway: schemathesis finds no 5xx.

Nor does it find any response that contradicts the document.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.envoy import OPENAPI_PATH
from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login

UNSAFE_TO_FUZZ = [
    "users_v1_AuthService_Logout",
    "users_v1_AuthService_RotateSigningKey",
    "users_v1_AuthService_ChangePassword",
    "audit_v1_AuditService_SubscribeEvents",
    "users_v1_UserService_SetRoleMfaRequired",
]
"""Ending the fuzzer's own session, rotating the signing key under every other test, guessing
the admin's current password (which counts toward locking the admin out from this host), a
stream that stays open by design, and requiring a second factor of a role other tests log in
with."""


@pytest.fixture(scope="session")
def fuzzer(client: httpx.Client) -> dict[str, str]:
    """An admin session of its own, so whatever the fuzzer does stays out of other tests' way."""
    return bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))


def test_the_gateway_serves_the_document(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(OPENAPI_PATH.read_text())


schema = schemathesis.openapi.from_path(OPENAPI_PATH).exclude(operation_id=UNSAFE_TO_FUZZ)
schema.config.phases.update(phases=["examples", "fuzzing"])


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_responses_match_the_document(
    case: schemathesis.Case, mesh: RunningMesh, fuzzer: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=mesh.url,
        headers=fuzzer,
        timeout=15,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
