"""Token verification: each refusal's reason, keys refetched for a new kid, cache, revocation.

Also how wildcard permissions (``*``, ``schema:*``) grant others.
"""

import asyncio
import base64
import json
import time

import jwt
import pytest

from common import times
from common.auth import (
    JwksKeyProvider,
    NoRevocations,
    RevokedSet,
    TokenVerifier,
    has_permission,
)
from common.errors import Unauthenticated
from tests.support.tokens import AUDIENCE, ISSUER, TestSigner


def reason_of(verifier, token, typ="at+jwt"):
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify_claims(token, token_type=typ)
    return caught.value.reason


def test_valid_token_yields_principal(verifier, signer):
    principal = verifier.verify_access(signer.mint(permissions=("schema:read",)))
    assert principal.username == "alice"
    assert principal.has("schema:read")
    assert not principal.has("schema:write")


def test_alg_none_rejected(verifier, signer):
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "at+jwt", "kid": "test-key"}).encode()
    ).rstrip(b"=")
    body = jwt.decode(signer.mint(), options={"verify_signature": False})
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    assert (
        reason_of(verifier, f"{header.decode()}.{payload.decode()}.")
        == "TOKEN_ALGORITHM_NOT_ALLOWED"
    )


def test_expired_and_future_tokens_rejected(verifier, signer):
    now = int(time.time())
    assert reason_of(verifier, signer.mint(overrides={"exp": now - 60})) == "TOKEN_EXPIRED"
    assert reason_of(verifier, signer.mint(overrides={"nbf": now + 600})) == "TOKEN_NOT_YET_VALID"


def test_wrong_audience_issuer_and_type(verifier, signer):
    assert reason_of(verifier, signer.mint(overrides={"aud": "other"})) == "TOKEN_AUDIENCE_INVALID"
    assert reason_of(verifier, signer.mint(overrides={"iss": "evil"})) == "TOKEN_ISSUER_INVALID"
    assert reason_of(verifier, signer.mint(typ="rt+jwt")) == "TOKEN_TYPE_MISMATCH"


def test_tampered_payload_rejected(verifier, signer):
    head, _, sig = signer.mint(permissions=("schema:read",)).split(".")
    forged = jwt.decode(signer.mint(), options={"verify_signature": False})
    forged["permissions"] = ["*"]
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert reason_of(verifier, f"{head}.{payload}.{sig}") == "TOKEN_SIGNATURE_INVALID"


def test_unknown_kid_rejected(verifier):
    assert reason_of(verifier, TestSigner(kid="other").mint()) == "TOKEN_KEY_UNKNOWN"


def test_permission_wildcards():
    assert has_permission({"*"}, "audit:read")
    assert has_permission({"schema:*"}, "schema:write")
    assert not has_permission({"schema:*"}, "branch:create")


def test_jwks_provider_refreshes_on_unknown_kid_but_rate_limits():
    signers = [TestSigner(kid="k1")]
    calls = []
    now = [0.0]

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.01)
        return {"keys": [k for s in signers for k in s.jwks()["keys"]]}

    async def scenario():
        provider = JwksKeyProvider(fetch, min_refresh_seconds=10, clock=lambda: now[0])
        assert provider.public_key("k1") is None  # nothing fetched before it is needed
        # Twenty callers meeting an unknown kid at once cause one fetch, and all look again.
        assert all(await asyncio.gather(*(provider.refresh() for _ in range(20))))
        assert provider.public_key("k1") is not None
        assert len(calls) == 1
        signers.append(TestSigner(kid="k2"))
        assert not await provider.refresh()  # within the rate limit: no second fetch
        assert provider.public_key("k2") is None
        now[0] = 11
        assert await provider.refresh()
        assert provider.public_key("k2") is not None
        assert len(calls) == 2

    asyncio.run(scenario())


def test_authenticate_fetches_the_keys_for_an_unknown_kid():
    signer = TestSigner(kid="k1")

    async def fetch():
        return signer.jwks()

    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys=JwksKeyProvider(fetch), revocations=NoRevocations()
    )
    principal = asyncio.run(verifier.authenticate(signer.mint()))
    assert principal.username == "alice"


class _Revocations:
    def __init__(self):
        self.sessions = set()

    def is_revoked(self, *, session_id, token_id):
        return session_id in self.sessions

    async def confirm(self, token):
        return None


class _Keys:
    """A key provider whose keys can be withdrawn."""

    def __init__(self, signer):
        self.keys = {signer.kid: signer.public_key(signer.kid)}

    def public_key(self, kid):
        return self.keys.get(kid)

    async def refresh(self):
        return False


def test_a_verified_token_is_served_from_the_cache_and_still_checked_for_revocation(signer):
    revocations = _Revocations()
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=revocations)
    token = signer.mint()
    first = verifier.verify_access(token)
    assert verifier.verify_access(token) is first  # the cached principal, not a new decode
    revocations.sessions.add(first.session_id)
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify_access(token)
    assert caught.value.reason == "TOKEN_REVOKED"


def test_a_cached_token_never_outlives_its_expiry(signer, monkeypatch):
    now = [times.now()]
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=signer,
        revocations=NoRevocations(),
        clock=lambda: now[0],
    )
    verified = []
    real = verifier._verify
    monkeypatch.setattr(verifier, "_verify", lambda *a: verified.append(1) or real(*a))
    token = signer.mint(ttl=60)
    verifier.verify_access(token)
    verifier.verify_access(token)
    assert len(verified) == 1
    now[0] += times.seconds(61)  # past exp by the verifier's clock: the cache no longer answers
    verifier.verify_access(token)  # (the signature library, on the real clock, still accepts)
    assert len(verified) == 2


def test_a_cached_token_dies_with_the_key_that_signed_it(signer):
    keys = _Keys(signer)
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys=keys, revocations=NoRevocations()
    )
    token = signer.mint()
    verifier.verify_access(token)
    keys.keys.clear()  # the key is no longer published
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify_access(token)
    assert caught.value.reason == "TOKEN_KEY_UNKNOWN"


def test_the_token_cache_is_bounded(signer):
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations(), cache_entries=3
    )
    tokens = [signer.mint() for _ in range(10)]
    for token in tokens:
        verifier.verify_access(token)
    assert len(verifier._cache) == 3
    # The most recently used stay: the last one is a hit, the first is verified again.
    last = verifier.verify_access(tokens[-1])
    assert verifier.verify_access(tokens[-1]) is last


def test_revoked_set_covers_sessions_and_tokens_until_they_expire():
    revoked = RevokedSet()
    revoked.add(session_id="s1", token_id=None, expires_ns=100, now_ns=0)
    revoked.add(session_id="s2", token_id="t2", expires_ns=50, now_ns=0)
    revoked.add(session_id="s3", token_id=None, expires_ns=10, now_ns=20)  # already expired
    assert revoked.covers(session_id="s1", token_id="other")
    assert revoked.covers(session_id="elsewhere", token_id="t2")
    assert not revoked.covers(session_id="s2", token_id="t-other")  # only the token was revoked
    assert not revoked.covers(session_id="s3", token_id="x")
    revoked.forget_expired(60)
    assert not revoked.covers(session_id="elsewhere", token_id="t2")
    assert revoked.covers(session_id="s1", token_id="other")
