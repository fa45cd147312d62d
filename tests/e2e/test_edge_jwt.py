"""Tokens the gateway refuses before any service sees them.

Each forged token is tried on a route that needs a token; the 401 must come from Envoy's
``jwt_authn`` (named in the ErrorInfo metadata), not from a service further in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "ontology-mesh",
        "aud": "ontology-mesh",
        "sub": str(uuid.uuid4()),
        "username": "mallory",
        "roles": ["admin"],
        "permissions": ["*"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rejected_at_the_edge(client: httpx.Client, token: str | None) -> dict[str, Any]:
    headers = bearer(token) if token is not None else {}
    response = client.get("/api/v1/roles", headers=headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == 16
    assert body["details"][0]["domain"] == "gateway.mesh"
    assert body["details"][0]["metadata"]["envoy_details"].startswith("jwt_authn_access_denied")
    return dict(body)


def _sign(mesh: RunningMesh, claims: dict[str, Any]) -> str:
    kid, key = mesh.signing_key()
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})


def test_a_genuine_token_passes(
    mesh: RunningMesh, client: httpx.Client, admin: dict[str, str]
) -> None:
    assert client.get("/api/v1/roles", headers=admin).status_code == 200


def test_missing_token(client: httpx.Client) -> None:
    assert _rejected_at_the_edge(client, None)["message"] == "Jwt is missing"


def test_token_in_the_query_string_is_not_taken(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    token = admin["Authorization"].removeprefix("Bearer ")
    response = client.get("/api/v1/roles", params={"access_token": token})
    assert response.status_code == 401, response.text
    assert response.json()["message"] == "Jwt is missing"


def test_expired_token(mesh: RunningMesh, client: httpx.Client) -> None:
    past = int(time.time()) - 3600
    token = _sign(mesh, _claims(iat=past - 300, nbf=past - 300, exp=past))
    assert "expired" in _rejected_at_the_edge(client, token)["message"]


def test_wrong_audience(mesh: RunningMesh, client: httpx.Client) -> None:
    token = _sign(mesh, _claims(aud="somebody-else"))
    assert "udience" in _rejected_at_the_edge(client, token)["message"]


def test_wrong_issuer(mesh: RunningMesh, client: httpx.Client) -> None:
    _rejected_at_the_edge(client, _sign(mesh, _claims(iss="https://evil.example")))


def test_alg_none(mesh: RunningMesh, client: httpx.Client) -> None:
    kid, _ = mesh.signing_key()
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    _rejected_at_the_edge(client, f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key(mesh: RunningMesh, client: httpx.Client) -> None:
    kid, key = mesh.signing_key()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    _rejected_at_the_edge(client, f"{header}.{payload}.{_b64(signature)}")


def test_signed_by_an_unknown_key(client: httpx.Client) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": "stranger"})
    _rejected_at_the_edge(client, token)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("GET", "/auth/validate"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/health"),
    ],
)
def test_exempt_paths_reach_the_service_without_a_token(
    client: httpx.Client, method: str, path: str
) -> None:
    response = client.request(method, path, json={} if method == "POST" else None)
    assert "jwt_authn" not in response.text
    assert response.status_code in (200, 400, 401)


def test_a_rotated_signing_key_is_accepted_at_once_across_the_mesh(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    """The key a rotation switches to was published beforehand, so its tokens work at once.

    The edge and every service accept them on the first request; tokens signed with the old key
    keep working.
    """
    before = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    rotated = client.post("/api/v1/signingKeys:rotate", headers=admin, json={})
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    assert new_kid in before
    fresh = login(client, "admin", ADMIN_PASSWORD)
    header = json.loads(base64.urlsafe_b64decode(str(fresh["access_token"]).split(".")[0] + "=="))
    assert header["kid"] == new_kid
    new_token = bearer(str(fresh["access_token"]))
    assert client.get("/api/v1/roles", headers=new_token).status_code == 200
    assert client.get("/api/v2/query/events", headers=new_token).status_code == 200
    assert client.get("/api/v1/branches", headers=new_token).status_code == 200
    assert client.get("/api/v1/roles", headers=admin).status_code == 200
