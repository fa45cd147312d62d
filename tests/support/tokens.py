"""A test signer: mints ES256 tokens with a key of its own, and forged ones for attack tests.

Service-level tests use it to call a service without the User Service; mesh-level tests get
real tokens from a real User Service instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from common.auth import ACCESS_TOKEN_TYPE, ALGORITHM, keys_from_jwks

ISSUER = "ontology-mesh"
AUDIENCE = "ontology-mesh"


class TestSigner:
    __test__ = False

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self._public = keys_from_jwks(self.jwks())[kid]

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": [jwk]}

    def public_key(self, kid: str) -> Any | None:
        return self._public if kid == self.kid else None

    async def refresh(self) -> bool:
        return False

    def mint(
        self,
        *,
        sub: str = "user-1",
        username: str = "alice",
        permissions: tuple[str, ...] = ("*",),
        roles: tuple[str, ...] = ("admin",),
        typ: str = ACCESS_TOKEN_TYPE,
        ttl: int = 300,
        overrides: Mapping[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "username": username,
            "roles": list(roles),
            "permissions": list(permissions),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
            "sid": str(uuid.uuid4()),
        }
        claims.update(overrides or {})
        return jwt.encode(
            claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": typ}
        )


class MintedTokens:
    """A token source for relays under test: a fresh ``audit:write`` token per stream."""

    def __init__(self, signer: TestSigner) -> None:
        self._signer = signer
        self.invalidations = 0

    async def token(self) -> str:
        return self._signer.mint(permissions=("audit:write",))

    def invalidate(self) -> None:
        self.invalidations += 1
