"""Token verification and authorization shared by every service (RFC 8725 hardened).

The User Service signs ES256 JWTs; every service verifies them with the User Service's public
keys (found by ``kid``), pins the algorithm list, checks ``typ``, issuer, audience and the time
claims, and consults a revocation check. Nothing here knows about gRPC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from jwt.algorithms import ECAlgorithm

from common.errors import PermissionDenied, Unauthenticated

ALGORITHM = "ES256"
"""The one signing algorithm of the mesh; verification accepts nothing else."""
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT typ, not a secret
REFRESH_TOKEN_TYPE = "rt+jwt"  # noqa: S105 - a JWT typ, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid")

ADMIN_PERMISSION = "*"
PERMISSIONS = (
    "schema:read",
    "schema:write",
    "branch:create",
    "branch:merge",
    "branch:delete",
    "action:execute",
    "audit:read",
    "audit:write",
    "users:read",
    "users:write",
)
"""Every permission string the mesh knows, ``resource:action``; ``*`` grants all of them."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    session_id: str
    token_id: str
    expires_at: int
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)

    def require(self, permission: str) -> None:
        if not self.has(permission):
            raise PermissionDenied(
                f"permission {permission!r} is required",
                reason="MISSING_PERMISSION",
                metadata={"permission": permission},
            )


def has_permission(granted: Iterable[str], permission: str) -> bool:
    """``*`` grants everything, ``resource:*`` every action on one resource."""
    granted_set = set(granted)
    if ADMIN_PERMISSION in granted_set or permission in granted_set:
        return True
    resource = permission.split(":", 1)[0]
    return f"{resource}:*" in granted_set


class KeyProvider(Protocol):
    """Public verification keys by ``kid``; may refresh itself when a kid is unknown."""

    def public_key(self, kid: str) -> Any | None: ...


class RevocationCheck(Protocol):
    """Answers whether a verified token's session or id has been revoked."""

    def is_revoked(self, *, session_id: str, token_id: str, issued_at: int) -> bool: ...


class RevokedSet:
    """Revoked session and token ids, each kept until the last token it covers has expired.

    The one in-memory view behind every ``RevocationCheck`` of the mesh; a single writer thread
    adds and forgets, any thread may ask.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, float] = {}
        self._tokens: dict[str, float] = {}

    def add(self, *, session_id: str, token_id: str | None, expires_at: float, now: float) -> None:
        """Record a revocation of one token (``token_id``) or of a whole session."""
        if expires_at <= now:
            return
        if token_id:
            self._tokens[token_id] = expires_at
        else:
            self._sessions[session_id] = expires_at

    def covers(self, *, session_id: str, token_id: str) -> bool:
        return session_id in self._sessions or token_id in self._tokens

    def forget_expired(self, now: float) -> None:
        """No token a revocation covers outlives its expiry; keep memory bounded."""
        for entries in (self._sessions, self._tokens):
            for key in [k for k, expires_at in entries.items() if expires_at <= now]:
                del entries[key]


class NoRevocations:
    """For tools and tests that verify signatures only."""

    def is_revoked(self, *, session_id: str, token_id: str, issued_at: int) -> bool:
        return False


def _reject(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


@dataclass
class TokenVerifier:
    """Verifies a compact JWT and returns its claims, or raises Unauthenticated with a reason."""

    issuer: str
    audience: str
    keys: KeyProvider
    revocations: RevocationCheck
    leeway_seconds: int = 5

    def verify_claims(self, token: str, *, token_type: str) -> dict[str, Any]:
        if not token:
            raise _reject("TOKEN_MISSING", "no token was presented")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _reject("TOKEN_MALFORMED", f"token is malformed: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise _reject(
                "TOKEN_ALGORITHM_NOT_ALLOWED",
                f"token algorithm {header.get('alg')!r} is not allowed",
            )
        if header.get("typ") != token_type:
            raise _reject(
                "TOKEN_TYPE_MISMATCH",
                f"token type {header.get('typ')!r} is not {token_type!r}",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("TOKEN_KEY_UNKNOWN", "token has no key id")
        key = self.keys.public_key(kid)
        if key is None:
            raise _reject("TOKEN_KEY_UNKNOWN", f"token key id {kid!r} is not known")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _reject("TOKEN_EXPIRED", "token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _reject("TOKEN_NOT_YET_VALID", "token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise _reject("TOKEN_AUDIENCE_INVALID", "token audience is not this mesh") from exc
        except jwt.InvalidIssuerError as exc:
            raise _reject("TOKEN_ISSUER_INVALID", "token issuer is not trusted") from exc
        except jwt.InvalidSignatureError as exc:
            raise _reject("TOKEN_SIGNATURE_INVALID", "token signature is invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _reject("TOKEN_CLAIM_MISSING", str(exc)) from exc
        except jwt.InvalidTokenError as exc:
            raise _reject("TOKEN_INVALID", f"token is invalid: {exc}") from exc
        if self.revocations.is_revoked(
            session_id=str(claims["sid"]), token_id=str(claims["jti"]), issued_at=int(claims["iat"])
        ):
            raise _reject("TOKEN_REVOKED", "token has been revoked")
        return claims

    def verify_access(self, token: str) -> Principal:
        claims = self.verify_claims(token, token_type=ACCESS_TOKEN_TYPE)
        return principal_from_claims(claims)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=str(claims["sub"]),
        username=str(claims.get("username", "")),
        roles=tuple(str(r) for r in claims.get("roles", ())),
        permissions=frozenset(str(p) for p in claims.get("permissions", ())),
        session_id=str(claims["sid"]),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        claims=dict(claims),
    )


class JwksKeyProvider:
    """Keys from a JWKS document fetched from the User Service, refreshed on an unknown kid.

    Refreshes are rate limited so a flood of tokens with invented kids cannot turn into a flood
    of fetches.
    """

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        *,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None

    def public_key(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_refresh():
                self._refresh_locked()
                key = self._keys.get(kid)
        return key

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._min_refresh

    def _refresh_locked(self) -> None:
        self._fetched_at = self._clock()
        document = self._fetch()
        self._keys = keys_from_jwks(document)


def keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Any]:
    """Public keys by kid from a JWKS document, keeping only ES256 signing keys."""
    keys: dict[str, Any] = {}
    for entry in document.get("keys", ()):
        if entry.get("kty") != "EC" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        if entry.get("use", "sig") != "sig" or not entry.get("kid"):
            continue
        keys[str(entry["kid"])] = ECAlgorithm.from_jwk(dict(entry))
    return keys
