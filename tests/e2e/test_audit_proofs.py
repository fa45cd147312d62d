"""The verifiable audit log from outside: REST proofs through Envoy, and ``mesh audit``."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
from google.protobuf import json_format

from audit import chain, convert
from audit.v1 import audit_pb2
from tests.support import rfc9162
from tests.support.mesh import RunningMesh, mesh_audit


def _publish(client: httpx.Client, admin: dict[str, str], count: int) -> list[dict]:
    stored = []
    for n in range(count):
        event = {
            "id": str(uuid.uuid4()),
            "source": "/e2e-proofs",
            "type": "oms.schema.updated",
            "time": "2026-06-01T12:00:00.123456789Z",
            "actor": "admin",
            "data": {"n": n, "ünïcode": "ü"},
        }
        response = client.post("/api/v2/events", headers=admin, json=event)
        assert response.status_code == 200, response.text
        stored.append(response.json())
    return stored


def _leaf(event_json: dict) -> bytes:
    message = json_format.ParseDict(event_json, audit_pb2.Event())
    return chain.leaf_hash(convert.stored_to_domain(message))


def test_proofs_over_rest_verify_with_the_rfc_algorithms(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    key = client.get("/api/v2/checkpoints:verifierKey")  # no token
    assert key.status_code == 200, key.text
    assert key.json()["verifier_key"].startswith(key.json()["name"] + "+")
    _publish(client, admin, 1)
    earlier = client.post("/api/v2/checkpoints", headers=admin, json={}).json()
    events = _publish(client, admin, 3)
    checkpoint = client.post("/api/v2/checkpoints", headers=admin, json={})
    assert checkpoint.status_code == 200, checkpoint.text
    size = int(checkpoint.json()["tree_size"])
    root = base64.b64decode(checkpoint.json()["root_hash"])
    assert size >= int(events[-1]["sequence"])
    for event in events:
        proof = client.get(
            f"/api/v2/{event['name']}:inclusionProof", params={"tree_size": size}, headers=admin
        )
        assert proof.status_code == 200, proof.text
        body = proof.json()
        hashes = [base64.b64decode(h) for h in body["hashes"]]
        index = int(body["leaf_index"])
        assert rfc9162.verify_inclusion(index, size, _leaf(body["event"]), hashes, root)
    old_size = int(earlier["tree_size"])
    consistency = client.get(
        "/api/v2/checkpoints:consistencyProof",
        params={"first_tree_size": old_size, "second_tree_size": size},
        headers=admin,
    )
    assert consistency.status_code == 200, consistency.text
    hashes = [base64.b64decode(h) for h in consistency.json()["hashes"]]
    old_root = base64.b64decode(earlier["root_hash"])
    assert rfc9162.verify_consistency(old_size, size, old_root, root, hashes)
    missing = client.get("/api/v2/checkpoints:consistencyProof", headers=admin)
    assert missing.status_code == 400


def test_mesh_audit_witnesses_exports_and_verifies_through_the_gateway(
    mesh: RunningMesh,
    client: httpx.Client,
    admin: dict[str, str],
    admin_login: dict[str, object],
    tmp_path: Path,
) -> None:
    token = str(admin_login["access_token"])
    target = mesh.endpoints.grpc_targets["gateway"]
    key = client.get("/api/v2/checkpoints:verifierKey").json()["verifier_key"]
    events = _publish(client, admin, 4)
    state = tmp_path / "witness.json"
    first = mesh_audit(token, "witness", "--target", target, "--state", str(state), "--key", key)
    assert first.returncode == 0, first.stderr
    _publish(client, admin, 2)
    client.post("/api/v2/checkpoints", headers=admin, json={})
    again = mesh_audit(token, "witness", "--target", target, "--state", str(state))
    assert again.returncode == 0, again.stderr
    export = tmp_path / "export.jsonl"
    low, high = int(events[0]["sequence"]), int(events[-1]["sequence"])
    out = mesh_audit(token, "export", "--target", target, "--from", str(low), "--to", str(high),
        "--output", str(export),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    checked = mesh_audit(token, "verify", str(export), "--key", key)
    assert checked.returncode == 0, checked.stderr
    assert f"verified {high - low + 1} events" in checked.stdout
    lines = export.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"admin"', '"mallory"')
    export.write_text("".join(lines))
    tampered = mesh_audit(token, "verify", str(export), "--key", key)
    assert tampered.returncode == 1
    assert "TAMPERING DETECTED" in tampered.stderr and "line 3" in tampered.stderr
