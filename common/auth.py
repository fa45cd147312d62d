"""Token verification and authorization shared by every service (RFC 8725 hardened).

The User Service signs ES256 JWTs; every service verifies them with the User Service's public
keys (found by ``kid``), pins the algorithm list, checks ``typ``, issuer, audience and the time
claims, and consults a revocation check. Verified access tokens are kept in a bounded cache,
so the per-call cost of a token seen before is a dictionary lookup and the revocation check,
which always runs. Nothing here knows about gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from jwt.algorithms import ECAlgorithm
from prometheus_client.core import Metric

from common import times
from common.errors import PermissionDenied, Unauthenticated, quoted
from common.lru import LruCache
from common.metrics import counter
from common.permissions import Permission

ALGORITHM = "ES256"
"""The one signing algorithm of the mesh; verification accepts nothing else."""
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT typ, not a secret
REFRESH_TOKEN_TYPE = "rt+jwt"  # noqa: S105 - a JWT typ, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid")


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    session_id: str
    token_id: str
    expires_ns: int
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)

    def require(self, permission: str) -> None:
        if not self.has(permission):
            raise PermissionDenied(
                f"permission {quoted(permission)} is required",
                reason="MISSING_PERMISSION",
                metadata={"permission": permission},
            )


def has_permission(granted: Iterable[str], permission: str) -> bool:
    """``*`` grants everything, ``resource:*`` every action on one resource."""
    granted_set = set(granted)
    if Permission.ALL in granted_set or permission in granted_set:
        return True
    resource = permission.split(":", 1)[0]
    return f"{resource}:*" in granted_set


class KeyProvider(Protocol):
    """Public verification keys by ``kid``, from memory."""

    def public_key(self, kid: str) -> Any | None: ...

    async def refresh(self) -> bool:
        """Fetch the keys again, if allowed now; whether a caller should look once more."""
        ...


class RevocationCheck(Protocol):
    """Whether a verified token's session or id has been revoked."""

    def is_revoked(self, *, session_id: str, token_id: str) -> bool:
        """The answer of the in-memory view, checked on every call."""
        ...

    async def confirm(self, token: str) -> None:
        """Ask the revocation authority about a token the memory view accepted.

        Raises Unauthenticated if the authority refuses it; a no-op while that view is known to be
        current.
        """
        ...


class RevokedSet:
    """Revoked session and token ids, each kept until the last token it covers has expired.

    The one in-memory view behind every ``RevocationCheck`` of the mesh; a single writer thread
    adds and forgets, any thread may ask.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, int] = {}
        self._tokens: dict[str, int] = {}

    def add(self, *, session_id: str, token_id: str | None, expires_ns: int, now_ns: int) -> None:
        """Record a revocation of one token (``token_id``) or of a whole session."""
        if expires_ns <= now_ns:
            return
        if token_id:
            self._tokens[token_id] = expires_ns
        else:
            self._sessions[session_id] = expires_ns

    def covers(self, *, session_id: str, token_id: str) -> bool:
        return session_id in self._sessions or token_id in self._tokens

    def forget_expired(self, now_ns: int) -> None:
        """No token a revocation covers outlives its expiry; keep memory bounded."""
        for entries in (self._sessions, self._tokens):
            for key in [k for k, expires_ns in entries.items() if expires_ns <= now_ns]:
                del entries[key]


class NoRevocations:
    """For tools and tests that verify signatures only."""

    def is_revoked(self, *, session_id: str, token_id: str) -> bool:
        return False

    async def confirm(self, token: str) -> None:
        return None


def _reject(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    key: Any
    """The key object the signature was checked with; the entry dies with it."""


@dataclass
class TokenVerifier:
    """Verifies a compact JWT and returns its claims, or raises Unauthenticated with a reason.

    A verified access token is cached until its ``exp``, or until the key that signed it is no
    longer published, whichever comes first; its revocation is checked on every use.
    """

    issuer: str
    audience: str
    keys: KeyProvider
    revocations: RevocationCheck
    leeway_seconds: int = 5
    cache_entries: int = 10_000
    clock: Callable[[], int] = times.now
    _cache: LruCache[_Verified] = field(init=False, repr=False)
    _hits: int = field(init=False, default=0)
    _misses: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._cache = LruCache(self.cache_entries)

    def samples(self) -> list[Metric]:
        """How often the cache spared a signature check, for ``Metrics.sample``."""
        return [
            counter(
                "mesh_token_cache_hits", "Access tokens found verified in the cache.", self._hits
            ),
            counter(
                "mesh_token_cache_misses",
                "Access tokens whose signature and claims were checked.",
                self._misses,
            ),
        ]

    def verify_claims(self, token: str, *, token_type: str) -> dict[str, Any]:
        """The claims of a token of ``token_type`` that is valid and not revoked (in memory)."""
        claims, _, _ = self._verify(token, token_type)
        self._check_revoked(str(claims["sid"]), str(claims["jti"]))
        return claims

    def verify_access(self, token: str) -> Principal:
        """Who an access token speaks for, from the cache when it was verified before."""
        entry = self._cache.get(token)
        if (
            entry is not None
            and self.clock() < entry.principal.expires_ns
            and self.keys.public_key(entry.kid) is entry.key
        ):
            principal = entry.principal
            self._hits += 1
        else:
            self._misses += 1
            claims, kid, key = self._verify(token, ACCESS_TOKEN_TYPE)
            principal = principal_from_claims(claims)
            self._cache.put(token, _Verified(principal, kid, key))
        self._check_revoked(principal.session_id, principal.token_id)
        return principal

    async def authenticate(self, token: str) -> Principal:
        """:meth:`verify_access`, fetching the keys again for an unknown ``kid``.

        It also asks the revocation authority when the memory view may be stale.
        """
        try:
            principal = self.verify_access(token)
        except Unauthenticated as exc:
            if exc.reason != "TOKEN_KEY_UNKNOWN" or not await self.keys.refresh():
                raise
            principal = self.verify_access(token)
        await self.revocations.confirm(token)
        return principal

    def _check_revoked(self, session_id: str, token_id: str) -> None:
        if self.revocations.is_revoked(session_id=session_id, token_id=token_id):
            raise _reject("TOKEN_REVOKED", "token has been revoked")

    def _verify(self, token: str, token_type: str) -> tuple[dict[str, Any], str, Any]:
        """Signature and claims, without revocation: the claims, the kid and the key."""
        if not token:
            raise _reject("TOKEN_MISSING", "no token was presented")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _reject("TOKEN_MALFORMED", f"token is malformed: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise _reject(
                "TOKEN_ALGORITHM_NOT_ALLOWED",
                f"token algorithm {quoted(header.get('alg'))} is not allowed",
            )
        if header.get("typ") != token_type:
            raise _reject(
                "TOKEN_TYPE_MISMATCH",
                f"token type {quoted(header.get('typ'))} is not {quoted(token_type)}",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("TOKEN_KEY_UNKNOWN", "token has no key id")
        key = self.keys.public_key(kid)
        if key is None:
            raise _reject("TOKEN_KEY_UNKNOWN", f"token key id {quoted(kid)} is not known")
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
        return claims, kid, key


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=str(claims["sub"]),
        username=str(claims.get("username", "")),
        roles=tuple(str(r) for r in claims.get("roles", ())),
        permissions=frozenset(str(p) for p in claims.get("permissions", ())),
        session_id=str(claims["sid"]),
        token_id=str(claims["jti"]),
        expires_ns=int(claims["exp"]) * times.SECOND,
        claims=dict(claims),
    )


class JwksKeyProvider:
    """Keys from a JWKS document fetched from the User Service, refetched on an unknown kid.

    Fetches are rate limited so a flood of tokens with invented kids cannot turn into a flood
    of fetches; callers that waited while another fetched simply look again.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._fetches = 0

    def public_key(self, kid: str) -> Any | None:
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        seen = self._fetches
        async with self._lock:
            if self._fetches != seen:
                return True
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < self._min_refresh:
                return False
            self._fetched_at = now
            self._keys = keys_from_jwks(await self._fetch())
            self._fetches += 1
            return True


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
