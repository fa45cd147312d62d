"""RFC 8725 attacks on a real User Service: each rejected with UNAUTHENTICATED and its reason.

Forged tokens are signed with the server's own private key (opened from its database) where
the attack needs a valid signature, so only the attacked property makes them fail.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.db import Database
from tests.support.users import bearer, rejected
from users.keystore import Sealer
from users.sql_store import SqlUserStore
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import user_service_pb2 as users_pb


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def server_key(users):
    store = SqlUserStore(Database(users.settings.database_url))
    with store.read() as reads:
        signing = reads.signing_keys()[0]
    store.close()
    return signing.kid, Sealer(users.settings.key_encryption_key).open(signing.kid, signing.sealed)


@pytest.fixture(scope="module")
def claims(admin):
    return jwt.decode(admin.access_token, options={"verify_signature": False})


def _sign(server_key, claims, *, typ="at+jwt", kid=None, key=None, **changes):
    server_kid, private = server_key
    body = {**claims, "jti": str(uuid.uuid4()), **changes}
    return jwt.encode(
        body, key or private, algorithm="ES256", headers={"kid": kid or server_kid, "typ": typ}
    )


def _reason(users, token):
    code, reason = rejected(
        users.auth.ValidateToken, auth_pb.ValidateTokenRequest(token=token), timeout=10
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # The same token is refused the same way when it authenticates any other call.
    assert rejected(
        users.users.GetUser,
        users_pb.GetUserRequest(user_id="x"),
        metadata=bearer(token),
        timeout=10,
    ) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    return reason


def test_forged_token_with_the_real_key_is_accepted(users, server_key, claims):
    """The control: the forging helper itself produces tokens the server accepts."""
    response = users.auth.ValidateToken(
        auth_pb.ValidateTokenRequest(token=_sign(server_key, claims)), timeout=10
    )
    assert response.username == "admin"


def test_alg_none(users, claims):
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    token = f"{header}.{_b64(json.dumps(claims).encode())}."
    assert _reason(users, token) == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_hs256_signed_with_the_public_key(users, server_key, claims):
    kid, private = server_key
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert _reason(users, f"{header}.{payload}.{_b64(signature)}") == "TOKEN_ALGORITHM_NOT_ALLOWED"


def test_expired(users, server_key, claims):
    now = int(time.time())
    token = _sign(server_key, claims, iat=now - 600, nbf=now - 600, exp=now - 300)
    assert _reason(users, token) == "TOKEN_EXPIRED"


def test_not_yet_valid(users, server_key, claims):
    now = int(time.time())
    token = _sign(server_key, claims, nbf=now + 600, exp=now + 900)
    assert _reason(users, token) == "TOKEN_NOT_YET_VALID"


def test_wrong_audience(users, server_key, claims):
    assert (
        _reason(users, _sign(server_key, claims, aud="another-system")) == "TOKEN_AUDIENCE_INVALID"
    )


def test_wrong_issuer(users, server_key, claims):
    assert (
        _reason(users, _sign(server_key, claims, iss="https://evil.example"))
        == "TOKEN_ISSUER_INVALID"
    )


def test_tampered_payload(users, admin, claims):
    header, _, signature = admin.access_token.split(".")
    escalated = _b64(json.dumps({**claims, "permissions": ["*"], "sub": "someone-else"}).encode())
    assert _reason(users, f"{header}.{escalated}.{signature}") == "TOKEN_SIGNATURE_INVALID"


def test_unknown_kid(users, claims):
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = _sign((None, stranger), claims, kid="not-a-key-of-ours")
    assert _reason(users, token) == "TOKEN_KEY_UNKNOWN"


def test_signed_by_a_stranger_under_our_kid(users, server_key, claims):
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert _reason(users, _sign(server_key, claims, key=stranger)) == "TOKEN_SIGNATURE_INVALID"


def test_refresh_token_used_as_access_token(users, admin):
    assert _reason(users, admin.refresh_token) == "TOKEN_TYPE_MISMATCH"


def test_missing_session_claim(users, server_key, claims):
    body = {k: v for k, v in claims.items() if k != "sid"}
    kid, private = server_key
    token = jwt.encode(body, private, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    assert _reason(users, token) == "TOKEN_CLAIM_MISSING"


def test_garbage(users):
    assert _reason(users, "not.a.jwt") == "TOKEN_MALFORMED"
