"""Every error through the gateway is JSON ``{code, message, details}`` with the right status.

The first group comes from the services (the transcoder converts their gRPC status), the second
from Envoy itself (its local replies, mapped by ``local_reply_config``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format

from common.status import from_rpc_error
from gateway.mesh import Mesh
from gateway.settings import MeshSettings
from oms.v1 import (
    branch_service_pb2,
    branch_service_pb2_grpc,
    schema_service_pb2,
    schema_service_pb2_grpc,
)
from tests.support.errors import rest_details
from tests.support.mesh import (
    ADMIN_PASSWORD,
    EMPLOYEE,
    RunningMesh,
    bearer,
    mesh_env,
    new_branch,
    new_user,
)
from users.v1 import auth_service_pb2, auth_service_pb2_grpc


def _error(response: httpx.Response, status: int, code: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return dict(body)


def _reason(body: dict[str, object]) -> str:
    details = body["details"]
    assert isinstance(details, list)
    infos = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    assert len(infos) == 1
    return str(infos[0]["reason"])


@pytest.fixture(scope="module")
def viewer(client: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    return new_user(client, admin, roles=["viewer"], prefix="viewer")[1]


def test_invalid_argument_is_400_with_every_field_violation(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/users", headers=admin, json={"user": {"username": "X"}, "password": "short"}
    )
    body = _error(response, 400, 3)
    assert _reason(body) == "INVALID_ARGUMENT"
    bad_request = [
        d
        for d in body["details"]
        if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"  # type: ignore[attr-defined]
    ]
    fields = {v["field"] for v in bad_request[0]["field_violations"]}
    assert fields == {"user.username", "password"}


def test_unauthenticated_is_401(client: httpx.Client) -> None:
    response = client.post("/auth/login", json={"username": "admin", "password": "wrong-password"})
    assert _reason(_error(response, 401, 16))


def test_permission_denied_is_403(client: httpx.Client, viewer: dict[str, str]) -> None:
    response = client.post(
        "/api/v2/events",
        headers=viewer,
        json={"id": "x", "source": "e2e", "type": "t", "time": "2026-01-01T00:00:00Z"},
    )
    assert _reason(_error(response, 403, 7)) == "MISSING_PERMISSION"


def test_not_found_is_404(client: httpx.Client, admin: dict[str, str]) -> None:
    response = client.get(f"/users/{uuid.uuid4()}", headers=admin)
    assert _reason(_error(response, 404, 5)) == "USER_NOT_FOUND"


def test_already_exists_is_409(client: httpx.Client, admin: dict[str, str]) -> None:
    user = {"user": {"username": f"twin-{uuid.uuid4().hex[:8]}"}, "password": "twin-password-1"}
    assert client.post("/api/v1/users", headers=admin, json=user).status_code == 200
    response = client.post("/api/v1/users", headers=admin, json=user)
    assert _reason(_error(response, 409, 6)) == "USER_EXISTS"


def test_failed_precondition_is_400(
    client: httpx.Client, admin: dict[str, str], admin_login: dict[str, object]
) -> None:
    user_id = admin_login["user"]["user_id"]  # type: ignore[index]
    response = client.post(f"/api/v1/users/{user_id}:disable", headers=admin, json={})
    assert _reason(_error(response, 400, 9)) == "CANNOT_DISABLE_SELF"


def test_aborted_is_409(client: httpx.Client, admin: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"user": {"username": f"etag-{uuid.uuid4().hex[:8]}"}, "password": "etag-password-1"},
    ).json()
    response = client.post(
        f"/api/v1/users/{created['user_id']}:setRoles",
        headers=admin,
        json={"roles": ["viewer"], "etag": 'W/"999"'},
    )
    assert _reason(_error(response, 409, 10)) == "ETAG_MISMATCH"


def test_out_of_range_is_400(client: httpx.Client, admin: dict[str, str]) -> None:
    response = client.get("/api/v2/events:verify", headers=admin, params={"start_sequence": 2**62})
    assert _reason(_error(response, 400, 11)) == "SEQUENCE_OUT_OF_RANGE"


def test_an_unknown_body_field_is_refused(client: httpx.Client) -> None:
    """Envoy's transcoder would drop it; the gateway's body check refuses it first."""
    response = client.post(
        "/auth/login",
        json={"username": "admin", "password": ADMIN_PASSWORD, "no_such_field": True},
    )
    assert _reason(_error(response, 400, 3)) == "INVALID_REQUEST_BODY"
    assert "no_such_field" in response.json()["message"]


# Envoy's own replies.


def test_missing_token_is_401_json(client: httpx.Client) -> None:
    body = _error(client.get("/api/v1/roles"), 401, 16)
    assert body["message"] == "Jwt is missing"


def test_bad_json_is_400_json(client: httpx.Client) -> None:
    response = client.post(
        "/auth/login", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert _reason(_error(response, 400, 3)) == "INVALID_REQUEST_BODY"


def test_unknown_query_parameter_is_400_json(client: httpx.Client, admin: dict[str, str]) -> None:
    response = client.get("/api/v1/roles", params={"colour": "red"}, headers=admin)
    body = _error(response, 400, 3)
    assert "colour" in str(body["message"])


def test_unknown_path_is_404_json(client: httpx.Client, admin: dict[str, str]) -> None:
    body = _error(client.get("/no/such/path", headers=admin), 404, 5)
    assert body["message"] == "no route for GET /no/such/path"


def test_body_too_large_is_413_json(client: httpx.Client) -> None:
    huge = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    response = client.post(
        "/auth/login", content=huge, headers={"content-type": "application/json"}
    )
    assert _reason(_error(response, 413, 8)) == "RESOURCE_EXHAUSTED"


def test_a_long_url_reaches_the_service_every_time_and_a_longer_one_is_431_json(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    """Envoy passes a REST call's URL on as a header of the gRPC call.

    gRPC's default metadata limits refused such calls at random between 8 and 16 KiB (429);
    now the service answers every one, and Envoy refuses headers past its own limit.
    """
    long_token = "A" * (20 * 1024)
    for _ in range(20):
        response = client.get("/api/v1/branches", params={"page_token": long_token}, headers=admin)
        assert _reason(_error(response, 400, 3)) == "PAGE_TOKEN_INVALID"
    longer = client.get("/api/v1/branches", params={"page_token": "A" * (40 * 1024)}, headers=admin)
    assert _reason(_error(longer, 431, 8)) == "RESOURCE_EXHAUSTED"


def test_native_grpc_errors_are_left_as_grpc(client: httpx.Client) -> None:
    """A gRPC caller without a token gets grpc-status 16, not a JSON body."""
    response = httpx.post(
        f"{client.base_url}/users.v1.UserService/ListRoles",
        content=b"\x00\x00\x00\x00\x00",
        headers={"content-type": "application/grpc", "te": "trailers"},
    )
    assert response.headers.get("grpc-status") == "16"
    assert not response.content


def test_grpc_web_is_not_taken_for_grpc(client: httpx.Client, admin: dict[str, str]) -> None:
    """The gateway does not speak gRPC-Web.

    Such a request is answered in JSON like any other HTTP request, not with gRPC trailers, nor
    passed on to a service.
    """
    path = "/users.v1.UserService/ListRoles"
    headers = {"content-type": "application/grpc-web"}
    _error(client.post(path, content=b"", headers=headers), 401, 16)
    assert _reason(_error(client.post(path, content=b"", headers={**headers, **admin}), 404, 5))


def test_a_stalled_service_is_504_deadline_exceeded(tmp_path: Path) -> None:
    """The gateway's deadline on unary routes (1 s in this mesh of its own).

    A service that stops answering gets the caller a 504 rather than a hang. The token comes
    straight from the User Service, so only the stalled call meets the short deadline.
    """
    settings = dataclasses.replace(MeshSettings.on_free_ports(), unary_timeout_seconds=1)
    with (tmp_path / "mesh.log").open("w") as log:
        mesh = Mesh(settings, data_dir=tmp_path, out=log, env=mesh_env())
        with mesh as endpoints, grpc.insecure_channel(endpoints.grpc_targets["users"]) as channel:
            token = (
                auth_service_pb2_grpc.AuthServiceStub(channel)
                .Login(
                    auth_service_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD),
                    timeout=30,
                )
                .access_token
            )
            audit = mesh.supervisor.pid("audit")
            os.kill(audit, signal.SIGSTOP)
            try:
                response = httpx.get(
                    f"{endpoints.gateway_url}/api/v2/events:verify",
                    headers=bearer(token),
                    timeout=30,
                )
            finally:
                os.kill(audit, signal.SIGCONT)
    assert _reason(_error(response, 504, 4)) == "DEADLINE_EXCEEDED"


def _refused_over_grpc(
    mesh: RunningMesh,
    admin: dict[str, str],
    method: Callable[[grpc.Channel], Callable[..., object]],
    request: object,
) -> grpc.RpcError:
    """The error a native gRPC call through the gateway, as the admin, is refused with."""
    with (
        grpc.insecure_channel(mesh.gateway_target) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        method(channel)(request, metadata=[("authorization", admin["Authorization"])], timeout=10)
    return refused.value


def test_a_status_with_thousands_of_violations_still_reaches_rest_and_grpc_clients(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    """Once 800 violations made a trailer Envoy and gRPC clients refused (a 502, no status)."""
    branch = new_branch(client, admin)
    changes = [
        {"object": {"object_type": "Nope", "properties": {"id": str(i)}}} for i in range(2000)
    ]
    body = _error(
        client.post(
            f"/api/v1/schemas/{branch}:commit",
            headers=admin,
            json={"message": "m", "changes": changes},
        ),
        400,
        3,
    )
    infos = [d for d in body["details"] if d["@type"].endswith("ErrorInfo")]  # type: ignore[attr-defined]
    assert infos[0]["metadata"]["violation_count"] == "2000"
    (bad,) = [d for d in body["details"] if d["@type"].endswith("BadRequest")]  # type: ignore[attr-defined]
    listed = [v["field"] for v in bad["field_violations"]]
    assert listed == [f"changes[{i}].object.object_type" for i in range(len(listed))]
    assert f"the first {len(listed)} of 2000" in str(body["message"])

    request = json_format.ParseDict(
        {"branch": branch, "message": "m", "changes": changes},
        schema_service_pb2.CommitChangesRequest(),
    )
    refused = _refused_over_grpc(
        mesh, admin, lambda c: schema_service_pb2_grpc.SchemaServiceStub(c).CommitChanges, request
    )
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(refused).violations[0].field == "changes[0].object.object_type"


def test_a_merge_with_hundreds_of_conflicts_still_reaches_rest_and_grpc_clients(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    """A MergeConflict detail each for 400 conflicts once outgrew the trailer, as violations did."""
    trunk = new_branch(client, admin)

    def commit(branch: str, name: str) -> None:
        objects = [
            {"object": {"object_type": "Employee", "properties": {"id": str(i), "name": name}}}
            for i in range(400)
        ]
        response = client.post(
            f"/api/v1/schemas/{branch}:commit",
            headers=admin,
            json={"message": name, "changes": objects},
        )
        assert response.status_code == 200, response.text

    create = client.post(f"/api/v1/schemas/{trunk}/object-types", headers=admin, json=EMPLOYEE)
    assert create.status_code == 200, create.text
    commit(trunk, "base")
    feature = f"side-{uuid.uuid4().hex[:8]}"
    forked = client.post("/api/v1/branches", headers=admin, json={"name": feature, "source": trunk})
    assert forked.status_code == 200, forked.text
    commit(feature, "ours")
    commit(trunk, "theirs")

    body = _error(
        client.post(f"/api/v1/branches/{feature}/merge", headers=admin, json={"target": trunk}),
        400,
        9,
    )
    assert _reason(body) == "MERGE_CONFLICT"
    (info,) = rest_details(body, "ErrorInfo")
    assert info["metadata"]["detail_count"] == "400"  # type: ignore[index]
    conflicts = rest_details(body, "MergeConflict")
    assert 0 < len(conflicts) < 400
    assert f"the first {len(conflicts)} of 400" in str(body["message"])
    settled = [
        {"resource": c["resource"], "path": c["path"], "choice": "RESOLUTION_CHOICE_OURS"}
        for c in conflicts
    ]
    again = _error(
        client.post(
            f"/api/v1/branches/{feature}/merge",
            headers=admin,
            json={"target": trunk, "resolutions": settled},
        ),
        400,
        9,
    )
    (info,) = rest_details(again, "ErrorInfo")
    assert info["metadata"]["detail_count"] == str(400 - len(conflicts))  # type: ignore[index]
    shown = {(c["resource"], c["path"]) for c in conflicts}
    assert not shown & {(c["resource"], c["path"]) for c in rest_details(again, "MergeConflict")}

    request = branch_service_pb2.MergeBranchRequest(branch=feature, target=trunk)
    refused = _refused_over_grpc(
        mesh, admin, lambda c: branch_service_pb2_grpc.BranchServiceStub(c).MergeBranch, request
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(refused).reason == "MERGE_CONFLICT"
