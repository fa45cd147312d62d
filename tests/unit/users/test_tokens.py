"""Issued tokens: access tokens carry the identity and verify; refresh tokens only refresh.

Every token has its own id, so one can be revoked alone.
"""

import jwt
import pytest

from common import times
from common.auth import NoRevocations, TokenVerifier
from common.db import Database
from common.errors import Unauthenticated
from users.keys import KeyRing
from users.keystore import Sealer
from users.sql_store import SqlUserStore
from users.tokens import Identity, TokenIssuer


@pytest.fixture
def ring(tmp_path):
    store = SqlUserStore(Database(f"sqlite:///{tmp_path / 'users.db'}"))
    store.migrate()
    yield KeyRing(store, Sealer(bytes(32)), retention_seconds=3600)
    store.close()


@pytest.fixture
def issuer(ring):
    return TokenIssuer(ring, issuer="mesh", audience="mesh", access_seconds=60, refresh_seconds=600)


@pytest.fixture
def verifier(ring):
    return TokenVerifier(issuer="mesh", audience="mesh", keys=ring, revocations=NoRevocations())


IDENTITY = Identity(
    user_id="u1", username="ann", roles=("editor",), permissions=("schema:write", "schema:read")
)


def test_access_token_carries_identity_and_verifies(issuer, verifier, ring):
    issued = issuer.access_token(IDENTITY, session_id="s1")
    principal = verifier.verify_access(issued.token)
    assert (principal.user_id, principal.username, principal.session_id) == ("u1", "ann", "s1")
    assert principal.permissions == {"schema:read", "schema:write"}
    assert principal.token_id == issued.token_id
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "ES256", "kid": ring.signing_key().kid, "typ": "at+jwt"}
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == issued.lifetime == 60
    assert issued.expires_ns == claims["exp"] * times.SECOND == principal.expires_ns


def test_refresh_token_is_only_a_refresh_token(issuer, verifier):
    issued = issuer.refresh_token(user_id="u1", session_id="s1")
    claims = verifier.verify_claims(issued.token, token_type="rt+jwt")
    assert (claims["sub"], claims["sid"], claims["jti"]) == ("u1", "s1", issued.token_id)
    assert "permissions" not in claims
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify_access(issued.token)
    assert caught.value.reason == "TOKEN_TYPE_MISMATCH"


def test_every_token_has_its_own_id(issuer):
    assert (
        issuer.access_token(IDENTITY, session_id="s").token_id
        != issuer.access_token(IDENTITY, session_id="s").token_id
    )
