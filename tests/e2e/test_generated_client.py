"""The OpenAPI document as client generators see it.

``openapi-spec-validator`` checks it is valid OpenAPI 3, and ``openapi-python-client`` (a real
generator) writes a typed client from the document the gateway serves; that client then logs
in, creates a branch and an object type, and validates the branch against the running mesh.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.support.mesh import ADMIN_PASSWORD, RunningMesh

PACKAGE = "mesh_generated_client"


@pytest.fixture(scope="module")
def document(client: httpx.Client) -> dict[str, Any]:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    return dict(served.json())


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)


@pytest.fixture(scope="module")
def generated(
    client: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_bytes(client.get("/openapi.json").content)
    config = folder / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_logs_in_creates_and_validates(
    mesh: RunningMesh, generated: ModuleType
) -> None:
    models = _module("models")
    auth = _module("api.users_v_1_auth_service.users_v_1_auth_service_login")
    create_branch = _module("api.oms_v_1_branch_service.oms_v_1_branch_service_create_branch")
    validate_branch = _module("api.oms_v_1_branch_service.oms_v_1_branch_service_validate_branch")
    create_type = _module("api.oms_v_1_schema_service.oms_v_1_schema_service_create_object_type")

    anonymous = generated.Client(base_url=mesh.url)
    session = auth.sync(
        client=anonymous,
        body=models.UsersV1AuthServiceLoginBody(username="admin", password=ADMIN_PASSWORD),
    )
    assert isinstance(session, models.UsersV1LoginResponse), session
    assert isinstance(session.expires_in, int) and session.expires_in > 0
    authed = generated.AuthenticatedClient(base_url=mesh.url, token=session.access_token)

    branch = create_branch.sync(
        client=authed,
        body=models.OmsV1BranchServiceCreateBranchBody(name="generated-client", source="main"),
    )
    assert isinstance(branch, models.OmsV1Branch), branch
    assert branch.name == "generated-client"

    string = models.OmsV1DataType(base=models.OmsV1DataTypeBase.BASE_TYPE_STRING)
    created = create_type.sync(
        "generated-client",
        client=authed,
        body=models.OmsV1ObjectType(
            api_name="Invoice",
            primary_key="number",
            properties=[
                models.OmsV1Property(api_name="number", data_type=string, required=True),
                models.OmsV1Property(api_name="customer", data_type=string),
            ],
        ),
    )
    assert isinstance(created, models.OmsV1ObjectType), created
    assert created.display_name == "Invoice"
    assert created.etag

    checked = validate_branch.sync(
        client=authed,
        body=models.OmsV1BranchServiceValidateBranchBody(branch="generated-client"),
    )
    assert isinstance(checked, models.OmsV1ValidateBranchResponse), checked
    assert checked.passed
    assert [f.rule_id for f in checked.findings] == ["OBJECT_TYPE_ADDED"]

    refused = create_type.sync(
        "generated-client",
        client=authed,
        body=models.OmsV1ObjectType(api_name="Invoice", primary_key="number"),
    )
    assert isinstance(refused, models.GoogleRpcStatus), refused
    assert refused.code == 6  # ALREADY_EXISTS, in the document's one error schema
