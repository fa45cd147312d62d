"""Issuing access and refresh tokens; verifying them is ``common.auth.TokenVerifier``'s job."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from common import times
from common.auth import ACCESS_TOKEN_TYPE, ALGORITHM, REFRESH_TOKEN_TYPE
from users.keys import KeyRing
from users.store import RoleDefinition, UserRecord

PASSWORD_CHANGE_TOKEN_TYPE = "pc+jwt"  # noqa: S105 - a JWT typ, not a secret
"""The one token Login gives a user who must change their password: no verifier of the mesh
takes it for an access token (``typ``), and ChangePassword takes nothing else from them."""

MFA_TICKET_TYPE = "mfa+jwt"
"""What Login gives a user whose password was right but who owes a second factor: good for
VerifySecondFactor, or for the enrolment a role requires, and for one session at most (its
``jti`` is recorded spent); no verifier of the mesh takes it for an access token."""


@dataclass(frozen=True)
class IssuedToken:
    """A signed token with the claims a caller needs without decoding it again."""

    token: str
    token_id: str
    expires_ns: int
    lifetime: int
    """Seconds from issue to expiry (the JWT's ``exp`` - ``iat``)."""


@dataclass(frozen=True)
class Identity:
    """Whom an access token speaks for."""

    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: tuple[str, ...]


class TokenIssuer:
    """Signs ES256 JWTs with the key ring's current key; ``typ`` tells the two kinds apart."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        access_seconds: int,
        refresh_seconds: int,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds
        self._clock = clock

    def access_token(
        self, identity: Identity, *, session_id: str, not_after_ns: int | None = None
    ) -> IssuedToken:
        return self._sign(
            ACCESS_TOKEN_TYPE,
            subject=identity.user_id,
            session_id=session_id,
            lifetime=self.access_seconds,
            not_after_ns=not_after_ns,
            extra={
                "username": identity.username,
                "roles": list(identity.roles),
                "permissions": sorted(identity.permissions),
            },
        )

    def refresh_token(
        self, *, user_id: str, session_id: str, not_after_ns: int | None = None
    ) -> IssuedToken:
        return self._sign(
            REFRESH_TOKEN_TYPE,
            subject=user_id,
            session_id=session_id,
            lifetime=self.refresh_seconds,
            not_after_ns=not_after_ns,
            extra={},
        )

    def password_change_token(
        self, *, user_id: str, username: str, session_id: str, not_after_ns: int
    ) -> IssuedToken:
        return self._sign(
            PASSWORD_CHANGE_TOKEN_TYPE,
            subject=user_id,
            session_id=session_id,
            lifetime=self.access_seconds,
            not_after_ns=not_after_ns,
            extra={"username": username},
        )

    def mfa_ticket(self, *, user_id: str, username: str, lifetime: int) -> IssuedToken:
        """A ticket of its own session id, so no revocation of a real session touches it."""
        return self._sign(
            MFA_TICKET_TYPE,
            subject=user_id,
            session_id=str(uuid.uuid4()),
            lifetime=lifetime,
            not_after_ns=None,
            extra={"username": username},
        )

    def _sign(
        self,
        typ: str,
        *,
        subject: str,
        session_id: str,
        lifetime: int,
        not_after_ns: int | None,
        extra: dict[str, Any],
    ) -> IssuedToken:
        """``not_after_ns`` caps the expiry (the end of the session the token belongs to)."""
        key = self._keys.signing_key()
        now = times.whole_seconds(self._clock())
        if not_after_ns is not None:
            lifetime = max(0, min(lifetime, times.whole_seconds(not_after_ns) - now))
        token_id = str(uuid.uuid4())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": token_id,
            "sid": session_id,
            **extra,
        }
        token = jwt.encode(
            claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ}
        )
        return IssuedToken(
            token=token,
            token_id=token_id,
            expires_ns=(now + lifetime) * times.SECOND,
            lifetime=lifetime,
        )


def permissions_of(roles: Iterable[str], defined: Mapping[str, RoleDefinition]) -> tuple[str, ...]:
    """The sorted union of the permissions of the named roles (unknown names grant nothing)."""
    return tuple(
        sorted({p for name in roles if name in defined for p in defined[name].permissions})
    )


def identity_of(user: UserRecord, defined: Mapping[str, RoleDefinition]) -> Identity:
    """Whom a user's access tokens speak for, with the roles as defined now."""
    return Identity(
        user_id=user.user_id,
        username=user.username,
        roles=user.roles,
        permissions=permissions_of(user.roles, defined),
    )


class OwnServiceTokens:
    """Access tokens the User Service signs for itself to ship its outbox to Audit.

    It holds the signing keys, so a login round trip to itself would add nothing; the token is
    reused until shortly before it expires, or until Audit refuses it.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        identity: Identity,
        *,
        margin_seconds: float = 30.0,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._issuer = issuer
        self._identity = identity
        self._margin_ns = times.seconds(margin_seconds)
        self._clock = clock
        self._current: IssuedToken | None = None

    async def token(self) -> str:
        current = self._current
        if current is None or self._clock() >= current.expires_ns - self._margin_ns:
            current = self._issuer.access_token(self._identity, session_id=str(uuid.uuid4()))
            self._current = current
        return current.token

    def invalidate(self) -> None:
        self._current = None
