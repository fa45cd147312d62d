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

from tests.support.mesh import ADMIN_PASSWORD, RunningMesh, bearer


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
