"""OAuth 2.0's token endpoint (RFC 6749) and token introspection (RFC 7662), on our sessions.

There is no client registry: `password` and `refresh_token` grants are for public clients
(a `client_id`, if sent, names nobody), and `client_credentials` takes an account's username
and password as the client's id and secret, as service accounts are the mesh's clients.
A grant never stands in for a step Login requires (a second factor, a password change): the
form has no place for a TOTP code, so such accounts are refused and use the JSON login flow.

Introspection authenticates its caller the same way, or by a bearer token, and answers only
to holders of ``tokens:introspect``.
Refusals carry the RFC's error codes as reasons (upper case); the gateway writes them as the
RFC's JSON errors. Domain errors of the grants become ``INVALID_GRANT`` with the mesh's own
reason kept in the metadata (``mesh_reason``), so a client learns why (a lock, say).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from common import errors
from common.auth import TokenVerifier, has_permission
from common.errors import quoted
from common.permissions import Permission
from users.service import AuthService, RequiredAction, TokenPair

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 16
"""More fields than any grant takes; a bigger form is refused before it is parsed whole."""
GRANT_TYPES = ("password", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
INTROSPECTION_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class Grant:
    """What a token request gets: an access token, and a refresh token unless None."""

    access_token: str
    expires_in: int
    refresh_token: str | None


def _invalid_request(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, reason="INVALID_REQUEST")


def parse_form(content_type: str, data: bytes) -> dict[str, str]:
    """The fields of a token request's body; each may appear once (RFC 6749 section 3.2)."""
    if content_type.split(";", 1)[0].strip().lower() != FORM:
        raise _invalid_request(f"the body must be {FORM}")
    try:
        pairs = parse_qsl(
            data.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(data),
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid_request("the body is not a form") from exc
    form = dict(pairs)
    if len(form) != len(pairs):
        raise _invalid_request("a parameter is given more than once")
    return form


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """``client_secret_basic`` (RFC 6749 section 2.3.1): the id and secret, or None."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise errors.Unauthenticated(
            "the basic credentials do not decode", reason="INVALID_CLIENT"
        ) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise errors.Unauthenticated(
            "the basic credentials have no secret", reason="INVALID_CLIENT"
        )
    return unquote(client_id), unquote(secret)


class TokenEndpoint:
    """Grants tokens by RFC 6749's grant types, through :class:`users.service.AuthService`."""

    def __init__(self, auth: AuthService) -> None:
        self._auth = auth
        self._grants: dict[
            str, Callable[[Mapping[str, str], tuple[str, str] | None, str], Grant]
        ] = {
            "password": self._password,
            "refresh_token": self._refresh,
            "client_credentials": self._client_credentials,
        }

    def grant(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, *, user_agent: str
    ) -> Grant:
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise _invalid_request("grant_type is required")
        handler = self._grants.get(grant_type)
        if handler is None:
            raise errors.InvalidArgument(
                (
                    f"grant_type {quoted(grant_type)} is not "
                    f"supported; use one of {', '.join(GRANT_TYPES)}"
                ),
                reason="UNSUPPORTED_GRANT_TYPE",
            )
        return handler(form, basic, user_agent)

    def _password(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, user_agent: str
    ) -> Grant:
        username, password = _required(form, "username", "password")
        pair = _granted(lambda: self._auth.login(username, password, user_agent=user_agent))
        return _grant(pair, refresh=True)

    def _refresh(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, user_agent: str
    ) -> Grant:
        (refresh_token,) = _required(form, "refresh_token")
        return _grant(_granted(lambda: self._auth.refresh(refresh_token)), refresh=True)

    def _client_credentials(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, user_agent: str
    ) -> Grant:
        client_id, secret = _client_secret(form, basic, purpose="client_credentials")
        with _as_client():
            pair = _granted(lambda: self._auth.login(client_id, secret, user_agent=user_agent))
        # RFC 6749 section 4.4.3: no refresh token; the client authenticates again instead.
        return _grant(pair, refresh=False)


@dataclass(frozen=True)
class Introspection:
    """What RFC 7662 section 2.2 says of an active access token; times in whole seconds."""

    scope: str
    username: str
    exp: int
    iat: int
    nbf: int
    sub: str
    aud: str
    iss: str
    jti: str


class IntrospectionEndpoint:
    """Tells a resource server whether a token is active (RFC 7662), and what it carries.

    Only access tokens are ever active: refresh tokens and Login's change-only tokens are no
    credential a resource server should take, so they answer inactive like any other token
    that is not an unexpired, unrevoked access token of this mesh.
    """

    def __init__(self, auth: AuthService, verifier: TokenVerifier) -> None:
        self._auth = auth
        self._verifier = verifier

    def introspect(
        self, form: Mapping[str, str], *, basic: tuple[str, str] | None, bearer: str
    ) -> Introspection | None:
        """The active token's description, or None; the caller must be authorised first.

        ``token_type_hint`` is only a hint (section 2.1), and there is one kind to look for.
        """
        self._authorise(form, basic=basic, bearer=bearer)
        (token,) = _required(form, "token")
        try:
            principal = self._verifier.verify_access(token)
        except errors.Unauthenticated:
            return None
        claims = principal.claims
        return Introspection(
            scope=" ".join(sorted(principal.permissions)),
            username=principal.username,
            exp=int(claims["exp"]),
            iat=int(claims["iat"]),
            nbf=int(claims["nbf"]),
            sub=principal.user_id,
            aud=str(claims["aud"]),
            iss=str(claims["iss"]),
            jti=principal.token_id,
        )

    def _authorise(
        self, form: Mapping[str, str], *, basic: tuple[str, str] | None, bearer: str
    ) -> None:
        """RFC 7662 section 2.1: the caller is a client holding ``tokens:introspect``.

        Else anyone could probe which tokens are live. A bearer token (a service's own) costs a
        signature check; client credentials cost a password hash, under the login lockout.
        """
        if bearer:
            try:
                permissions: Iterable[str] = self._verifier.verify_access(bearer).permissions
            except errors.Unauthenticated as exc:
                raise errors.Unauthenticated(
                    exc.message, reason="INVALID_CLIENT", metadata={"mesh_reason": exc.reason}
                ) from exc
        else:
            client_id, secret = _client_secret(form, basic, purpose="introspection")
            with _as_client():
                permissions = self._auth.authenticate_client(client_id, secret)
        if not has_permission(permissions, Permission.TOKENS_INTROSPECT):
            raise errors.PermissionDenied(
                f"introspection needs {Permission.TOKENS_INTROSPECT}",
                reason="UNAUTHORIZED_CLIENT",
                metadata={"permission": Permission.TOKENS_INTROSPECT.value},
            )


def _client_secret(
    form: Mapping[str, str], basic: tuple[str, str] | None, *, purpose: str
) -> tuple[str, str]:
    """The client's id and secret: ``client_secret_basic``, else ``client_secret_post``."""
    if basic is None:
        basic = (form.get("client_id", ""), form.get("client_secret", ""))
    if not all(basic):
        raise errors.Unauthenticated(
            f"{purpose} needs client_id and client_secret", reason="INVALID_CLIENT"
        )
    return basic


@contextmanager
def _as_client() -> Iterator[None]:
    """Refusals of the client's credentials as ``INVALID_CLIENT`` (RFC 6749 section 5.2)."""
    try:
        yield
    except errors.MeshError as exc:
        raise errors.Unauthenticated(
            exc.message,
            reason="INVALID_CLIENT",
            metadata={"mesh_reason": exc.reason, **exc.metadata},
        ) from exc


def _required(form: Mapping[str, str], *names: str) -> tuple[str, ...]:
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise _invalid_request(f"{', '.join(missing)} required")
    return tuple(form[name] for name in names)


_UNFINISHED = {
    RequiredAction.CHANGE_PASSWORD: (
        "the password must be changed first (POST /auth/password:change)",
        "PASSWORD_CHANGE_REQUIRED",
    ),
    # A password alone must not open a session the second factor guards.
    RequiredAction.VERIFY_SECOND_FACTOR: (
        "this account logs in with a second factor: POST /auth/login, then /auth/login/mfa",
        "MFA_REQUIRED",
    ),
    RequiredAction.CONFIGURE_TOTP: (
        "this account must set up a second factor: POST /auth/login, then /auth/totp:enroll",
        "MFA_ENROLLMENT_REQUIRED",
    ),
}
"""Logins that answered a required action instead of a session: what the refusal says."""


def _granted(issue: Callable[[], TokenPair]) -> TokenPair:
    """The pair ``issue`` hands out; its refusals as ``INVALID_GRANT``."""
    try:
        pair = issue()
    except (errors.Unauthenticated, errors.InvalidArgument) as exc:
        raise errors.InvalidArgument(
            exc.message,
            reason="INVALID_GRANT",
            metadata={**exc.metadata, "mesh_reason": exc.reason},
        ) from exc
    refusal = _UNFINISHED.get(pair.required)
    if refusal is not None:
        message, mesh_reason = refusal
        raise errors.InvalidArgument(
            message, reason="INVALID_GRANT", metadata={"mesh_reason": mesh_reason}
        )
    return pair


def _grant(pair: TokenPair, *, refresh: bool) -> Grant:
    return Grant(
        access_token=pair.access.token,
        expires_in=pair.access.lifetime,
        refresh_token=pair.refresh.token if refresh and pair.refresh else None,
    )
