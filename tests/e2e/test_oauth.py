"""OAuth 2.0 through the gateway, driven by a real client library (Authlib, and its joserfc).

Discovery names the token endpoint and the JWKS; the token endpoint takes RFC 6749's
form-encoded requests for the password, refresh-token and client-credentials grants, and
refuses with RFC 6749's JSON errors, which the library raises as OAuthError.
"""

from __future__ import annotations

import json

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer, login


@pytest.fixture(scope="module")
def discovery(client: httpx.Client) -> dict[str, object]:
    found = client.get("/.well-known/openid-configuration")
    assert found.status_code == 200, found.text
    return dict(found.json())


def test_discovery_names_the_endpoints_of_this_gateway(
    mesh: RunningMesh, discovery: dict[str, object]
) -> None:
    assert discovery["issuer"] == "ontology-mesh"
    assert discovery["token_endpoint"] == f"{mesh.url}/oauth/token"
    assert discovery["jwks_uri"] == f"{mesh.url}/.well-known/jwks.json"
    assert discovery["grant_types_supported"] == ["password", "refresh_token", "client_credentials"]


def _verified(discovery: dict[str, object], token: str) -> dict[str, object]:
    """The claims of ``token``, checked by joserfc (Authlib's JOSE) with the discovered JWKS."""
    keys = KeySet.import_key_set(httpx.get(str(discovery["jwks_uri"]), timeout=10).json())
    verified = jwt.decode(token, keys, algorithms=["ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]}, exp={"essential": True}
    ).validate(verified.claims)
    return dict(verified.claims)


def test_the_password_and_refresh_grants_with_authlib(
    client: httpx.Client, discovery: dict[str, object]
) -> None:
    endpoint = str(discovery["token_endpoint"])
    with OAuth2Client(client_id="mesh-cli", token_endpoint_auth_method="none") as oauth:
        token = oauth.fetch_token(
            endpoint, grant_type="password", username="admin", password=ADMIN_PASSWORD
        )
        assert token["token_type"] == "Bearer" and isinstance(token["expires_in"], int)
        claims = _verified(discovery, token["access_token"])
        assert (claims["iss"], claims["username"]) == ("ontology-mesh", "admin")
        assert client.get("/auth/validate", headers=bearer(token["access_token"])).status_code == (
            200
        )
        renewed = oauth.refresh_token(endpoint, refresh_token=token["refresh_token"])
        assert renewed["refresh_token"] != token["refresh_token"]
        assert _verified(discovery, renewed["access_token"])["sid"] == claims["sid"]
        with pytest.raises(OAuthError) as spent:
            oauth.refresh_token(endpoint, refresh_token=token["refresh_token"])
        assert spent.value.error == "invalid_grant"


def test_client_credentials_of_a_service_account(
    mesh: RunningMesh, discovery: dict[str, object]
) -> None:
    secrets = json.loads((mesh.endpoints.data_dir / "service-accounts.json").read_text())
    with OAuth2Client(
        client_id="svc-oms",
        client_secret=secrets["svc-oms"],
        token_endpoint_auth_method="client_secret_basic",
    ) as oauth:
        token = oauth.fetch_token(str(discovery["token_endpoint"]), grant_type="client_credentials")
    assert token["refresh_token"] == ""  # RFC 6749 section 4.4.3
    assert _verified(discovery, token["access_token"])["username"] == "svc-oms"


def test_refusals_are_rfc_6749_errors(client: httpx.Client, discovery: dict[str, object]) -> None:
    endpoint = str(discovery["token_endpoint"])
    with OAuth2Client(client_id="mesh-cli", token_endpoint_auth_method="none") as oauth:
        with pytest.raises(OAuthError) as wrong:
            oauth.fetch_token(endpoint, grant_type="password", username="admin", password="nope")
        assert wrong.value.error == "invalid_grant"
    with (
        OAuth2Client(
            client_id="svc-oms",
            client_secret="not it",
            token_endpoint_auth_method="client_secret_post",
        ) as oauth,
        pytest.raises(OAuthError) as client_error,
    ):
        oauth.fetch_token(endpoint, grant_type="client_credentials")
    assert client_error.value.error == "invalid_client"
    unsupported = client.post("/oauth/token", data={"grant_type": "authorization_code"})
    assert unsupported.status_code == 400
    assert unsupported.headers["cache-control"] == "no-store"
    assert unsupported.json()["error"] == "unsupported_grant_type"
    assert set(unsupported.json()) == {"error", "error_description"}
    as_json = client.post("/oauth/token", json={"grant_type": "password"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


def _service_client(mesh: RunningMesh) -> OAuth2Client:
    """Authlib's client as svc-oms, a resource server holding ``tokens:introspect``."""
    secrets = json.loads((mesh.endpoints.data_dir / "service-accounts.json").read_text())
    return OAuth2Client(
        client_id="svc-oms",
        client_secret=secrets["svc-oms"],
        token_endpoint_auth_method="client_secret_basic",
    )


def test_introspection_describes_an_active_token_with_authlib(
    mesh: RunningMesh, client: httpx.Client, discovery: dict[str, object]
) -> None:
    endpoint = str(discovery["introspection_endpoint"])
    assert endpoint == f"{mesh.url}/oauth/introspect"
    session = login(client, "admin", ADMIN_PASSWORD)
    access = str(session["access_token"])
    with _service_client(mesh) as oauth:
        found = oauth.introspect_token(endpoint, token=access, token_type_hint="access_token")
        assert found.status_code == 200, found.text
        assert found.headers["cache-control"] == "no-store"
        body = found.json()
        claims = _verified(discovery, access)
        assert body["active"] is True
        assert (body["username"], body["token_type"], body["scope"]) == ("admin", "Bearer", "*")
        for name in ("sub", "aud", "iss", "jti", "exp", "iat", "nbf"):
            assert body[name] == claims[name], name
        assert all(isinstance(body[n], int) for n in ("exp", "iat", "nbf"))
        assert client.post("/auth/logout", headers=bearer(access), json={}).status_code == 200
        logged_out = oauth.introspect_token(endpoint, token=access)
        assert logged_out.json() == {"active": False}
        garbage = oauth.introspect_token(endpoint, token="not-a-token")
        assert garbage.json() == {"active": False}


def test_introspection_needs_an_authenticated_client(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    token = admin["Authorization"].removeprefix("Bearer ")
    anonymous = client.post("/oauth/introspect", data={"token": token})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    wrong = client.post("/oauth/introspect", data={"token": token}, auth=("svc-oms", "not it"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
