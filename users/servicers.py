"""gRPC servicers: translate protos to domain calls and back, nothing more.

Token checks and public keys are answered from memory on the event loop; everything that
reads or writes the database, or hashes a password, hops to the blocking pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import empty_pb2

from common import errors
from common import reasons as runtime_reasons
from common.auth import TokenVerifier
from common.blocking import Blocking
from common.interceptors import (
    AUTHENTICATED,
    PUBLIC,
    Context,
    Policy,
    bearer_token,
    current_principal,
    header,
    requires,
)
from common.permissions import Permission
from common.times import to_timestamp
from users import convert, oauth
from users.directory import Directory
from users.oauth import IntrospectionEndpoint, TokenEndpoint
from users.revocations import RevocationLog
from users.service import AuthService, RequiredAction, TokenPair
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb
from users.v1 import user_service_pb2_grpc as users_grpc

TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth token_type, not a secret
DOMAIN = "users.mesh"
AUTH_SERVICE = "users.v1.AuthService"
USER_SERVICE = "users.v1.UserService"

POLICIES: dict[str, Policy] = {
    f"/{AUTH_SERVICE}/Login": PUBLIC,
    f"/{AUTH_SERVICE}/Logout": AUTHENTICATED,
    # Checks the token it is given; an invalid one is its answer, not a refusal to answer.
    f"/{AUTH_SERVICE}/ValidateToken": PUBLIC,
    f"/{AUTH_SERVICE}/RefreshToken": PUBLIC,
    # Authenticated in the domain: it takes Login's change-only token, which no other method
    # accepts, as well as an access token.
    f"/{AUTH_SERVICE}/ChangePassword": PUBLIC,
    # The reset token is the credential.
    f"/{AUTH_SERVICE}/ResetPassword": PUBLIC,
    # Authenticated in the domain: they take Login's MFA ticket, which no other method accepts
    # (and the enrolment RPCs an access token as well).
    f"/{AUTH_SERVICE}/VerifySecondFactor": PUBLIC,
    f"/{AUTH_SERVICE}/EnrollTotp": PUBLIC,
    f"/{AUTH_SERVICE}/ConfirmTotp": PUBLIC,
    # Discovery and the token endpoint come before any credential, as Login does.
    f"/{AUTH_SERVICE}/GetOpenidConfiguration": PUBLIC,
    f"/{AUTH_SERVICE}/IssueToken": PUBLIC,
    # The caller authenticates as a client holding tokens:introspect, checked in users.oauth:
    # by HTTP Basic (which no interceptor reads) or a bearer token.
    f"/{AUTH_SERVICE}/IntrospectToken": PUBLIC,
    # The user themself, or users:read / users:write; checked in the domain.
    f"/{AUTH_SERVICE}/ListSessions": AUTHENTICATED,
    f"/{AUTH_SERVICE}/DeleteSession": AUTHENTICATED,
    # Verifiers need the keys before they hold any credential; they carry only public keys.
    f"/{AUTH_SERVICE}/GetJwks": PUBLIC,
    # For the services that enforce revocations: a stream anyone could hold would be a slot
    # an attacker could take from them. A service account holds one per follower it runs.
    f"/{AUTH_SERVICE}/WatchRevocations": Policy(
        permission=Permission.REVOCATIONS_WATCH, bounded_per_caller=False
    ),
    f"/{AUTH_SERVICE}/RotateSigningKey": requires(Permission.ALL),
    # The user themself, or users:read; checked in the directory.
    f"/{USER_SERVICE}/GetUser": AUTHENTICATED,
    f"/{USER_SERVICE}/GetUserPermissions": AUTHENTICATED,
    f"/{USER_SERVICE}/CreateUser": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/ListUsers": requires(Permission.USERS_READ),
    f"/{USER_SERVICE}/UpdateUser": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/DisableUser": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/EnableUser": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/SetUserRoles": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/SetUserPassword": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/IssuePasswordResetToken": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/UnlockUser": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/ListRoles": AUTHENTICATED,
    f"/{USER_SERVICE}/ResetUserMfa": requires(Permission.USERS_WRITE),
    # Whether a role needs a second factor guards every holder, admins included: `*` only, so
    # no user manager can lift it from the admins.
    f"/{USER_SERVICE}/SetRoleMfaRequired": requires(Permission.ALL),
    f"/{USER_SERVICE}/ListPermissions": AUTHENTICATED,
    # And every permission of the role, checked in the directory, as for granting one.
    f"/{USER_SERVICE}/CreateRole": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/UpdateRole": requires(Permission.USERS_WRITE),
    f"/{USER_SERVICE}/DeleteRole": requires(Permission.USERS_WRITE),
}

EVENTS: dict[str, tuple[str, ...]] = {
    f"/{AUTH_SERVICE}/Login": (
        "users.auth.login_succeeded",
        "users.auth.second_factor_required",
        "users.auth.login_failed",
        "users.auth.locked_out",
    ),
    f"/{AUTH_SERVICE}/VerifySecondFactor": (
        "users.auth.login_succeeded",
        "users.auth.login_failed",
        "users.auth.locked_out",
    ),
    f"/{AUTH_SERVICE}/EnrollTotp": ("users.user.mfa_enrollment_started",),
    f"/{AUTH_SERVICE}/ConfirmTotp": ("users.user.mfa_enrolled", "users.auth.login_succeeded"),
    f"/{AUTH_SERVICE}/Logout": ("users.auth.logout",),
    f"/{AUTH_SERVICE}/RefreshToken": ("users.auth.refreshed", "users.auth.refresh_reuse_detected"),
    f"/{AUTH_SERVICE}/RotateSigningKey": ("users.auth.signing_key_rotated",),
    f"/{AUTH_SERVICE}/ChangePassword": (
        "users.user.password_changed",
        "users.auth.login_failed",
        "users.auth.locked_out",
    ),
    f"/{AUTH_SERVICE}/ResetPassword": ("users.user.password_changed",),
    f"/{AUTH_SERVICE}/DeleteSession": ("users.auth.session_ended",),
    f"/{AUTH_SERVICE}/IssueToken": (
        "users.auth.login_succeeded",
        "users.auth.second_factor_required",
        "users.auth.login_failed",
        "users.auth.locked_out",
        "users.auth.refreshed",
        "users.auth.refresh_reuse_detected",
    ),
    # A read: only a client's failed authentication is recorded, as a failed login.
    f"/{AUTH_SERVICE}/IntrospectToken": ("users.auth.login_failed", "users.auth.locked_out"),
    f"/{USER_SERVICE}/CreateUser": ("users.user.created",),
    f"/{USER_SERVICE}/UpdateUser": ("users.user.updated",),
    f"/{USER_SERVICE}/DisableUser": ("users.user.disabled", "users.user.change_refused"),
    f"/{USER_SERVICE}/EnableUser": ("users.user.enabled",),
    f"/{USER_SERVICE}/SetUserRoles": ("users.user.roles_changed", "users.user.change_refused"),
    f"/{USER_SERVICE}/SetUserPassword": ("users.user.password_reset",),
    f"/{USER_SERVICE}/IssuePasswordResetToken": ("users.user.password_reset_token_issued",),
    f"/{USER_SERVICE}/UnlockUser": ("users.auth.unlocked",),
    f"/{USER_SERVICE}/ResetUserMfa": ("users.user.mfa_reset",),
    f"/{USER_SERVICE}/SetRoleMfaRequired": ("users.role.mfa_required_changed",),
    f"/{USER_SERVICE}/CreateRole": ("users.role.created",),
    f"/{USER_SERVICE}/UpdateRole": ("users.role.updated",),
    f"/{USER_SERVICE}/DeleteRole": ("users.role.deleted",),
}
"""The event types each RPC emits into the outbox (see docs/audit.md, "Event types").

Any RPC refused for its caller also emits ``users.call.denied`` (:mod:`common.denials`).
"""


def _user_agent(context: Context) -> str:
    return header(context, "user-agent")


_REQUIRED_ACTIONS = {
    RequiredAction.NONE: auth_pb.REQUIRED_ACTION_UNSPECIFIED,
    RequiredAction.CHANGE_PASSWORD: auth_pb.REQUIRED_ACTION_CHANGE_PASSWORD,
    RequiredAction.VERIFY_SECOND_FACTOR: auth_pb.REQUIRED_ACTION_VERIFY_SECOND_FACTOR,
    RequiredAction.CONFIGURE_TOTP: auth_pb.REQUIRED_ACTION_CONFIGURE_TOTP,
}


def _session_message(pair: TokenPair) -> auth_pb.LoginResponse:
    """A session's tokens; a change-only session or an MFA ticket says what to do instead."""
    return auth_pb.LoginResponse(
        access_token=pair.access.token,
        refresh_token=pair.refresh.token if pair.refresh else "",
        token_type=TOKEN_TYPE,
        expires_in=pair.access.lifetime,
        refresh_expires_in=pair.refresh.lifetime if pair.refresh else 0,
        user=convert.user_to_message(pair.user),
        required_action=_REQUIRED_ACTIONS[pair.required],
    )


class AuthServicer(auth_grpc.AuthServiceServicer):
    """Translates AuthService calls to :class:`users.service.AuthService`.

    ValidateToken goes to the token verifier and WatchRevocations to the revocation log instead.
    """

    def __init__(
        self,
        auth: AuthService,
        verifier: TokenVerifier,
        revocations: RevocationLog,
        blocking: Blocking,
        *,
        issuer: str,
        public_url: str,
    ) -> None:
        self._auth = auth
        self._tokens = TokenEndpoint(auth)
        self._introspection = IntrospectionEndpoint(auth, verifier)
        self._configuration = auth_pb.OpenidConfiguration(
            issuer=issuer,
            token_endpoint=f"{public_url}/oauth/token",
            jwks_uri=f"{public_url}/.well-known/jwks.json",
            grant_types_supported=list(oauth.GRANT_TYPES),
            token_endpoint_auth_methods_supported=list(oauth.AUTH_METHODS),
            introspection_endpoint=f"{public_url}/oauth/introspect",
            introspection_endpoint_auth_methods_supported=list(oauth.INTROSPECTION_AUTH_METHODS),
        )
        self._verifier = verifier
        self._revocations = revocations
        self._run = blocking.run

    async def Login(self, request: auth_pb.LoginRequest, context: Context) -> auth_pb.LoginResponse:
        pair = await self._run(
            self._auth.login,
            request.username,
            request.password,
            user_agent=_user_agent(context),
        )
        return _session_message(pair)

    async def Logout(
        self, request: auth_pb.LogoutRequest, context: Context
    ) -> auth_pb.LogoutResponse:
        session_id = await self._run(self._auth.logout, current_principal())
        return auth_pb.LogoutResponse(session_id=session_id)

    async def ValidateToken(
        self, request: auth_pb.ValidateTokenRequest, context: Context
    ) -> auth_pb.ValidateTokenResponse:
        principal = await self._verifier.authenticate(
            request.token or bearer_token(context.invocation_metadata())
        )
        return auth_pb.ValidateTokenResponse(
            valid=True,
            user_id=principal.user_id,
            username=principal.username,
            roles=list(principal.roles),
            permissions=sorted(principal.permissions),
            expires_at=to_timestamp(principal.expires_ns),
            session_id=principal.session_id,
        )

    async def RefreshToken(
        self, request: auth_pb.RefreshTokenRequest, context: Context
    ) -> auth_pb.RefreshTokenResponse:
        pair = await self._run(self._auth.refresh, request.refresh_token)
        assert pair.refresh is not None, "a refreshed session always has a refresh token"
        return auth_pb.RefreshTokenResponse(
            access_token=pair.access.token,
            refresh_token=pair.refresh.token,
            token_type=TOKEN_TYPE,
            expires_in=pair.access.lifetime,
            refresh_expires_in=pair.refresh.lifetime,
        )

    async def ChangePassword(
        self, request: auth_pb.ChangePasswordRequest, context: Context
    ) -> auth_pb.LoginResponse:
        pair = await self._run(
            self._auth.change_password,
            bearer_token(context.invocation_metadata()),
            request.current_password,
            request.new_password,
            user_agent=_user_agent(context),
        )
        return _session_message(pair)

    async def ResetPassword(
        self, request: auth_pb.ResetPasswordRequest, context: Context
    ) -> auth_pb.ResetPasswordResponse:
        await self._run(self._auth.reset_password, request.reset_token, request.new_password)
        return auth_pb.ResetPasswordResponse()

    async def VerifySecondFactor(
        self, request: auth_pb.VerifySecondFactorRequest, context: Context
    ) -> auth_pb.LoginResponse:
        pair = await self._run(
            self._auth.verify_second_factor,
            bearer_token(context.invocation_metadata()),
            totp_code=request.totp_code,
            recovery_code=request.recovery_code,
            user_agent=_user_agent(context),
        )
        return _session_message(pair)

    async def EnrollTotp(
        self, request: auth_pb.EnrollTotpRequest, context: Context
    ) -> auth_pb.EnrollTotpResponse:
        enrolment = await self._run(
            self._auth.enroll_totp, bearer_token(context.invocation_metadata())
        )
        return auth_pb.EnrollTotpResponse(
            secret=enrolment.secret,
            provisioning_uri=enrolment.provisioning_uri,
            qr_code_svg=enrolment.qr_code_svg,
        )

    async def ConfirmTotp(
        self, request: auth_pb.ConfirmTotpRequest, context: Context
    ) -> auth_pb.ConfirmTotpResponse:
        codes, pair = await self._run(
            self._auth.confirm_totp,
            bearer_token(context.invocation_metadata()),
            request.totp_code,
            user_agent=_user_agent(context),
        )
        return auth_pb.ConfirmTotpResponse(
            recovery_codes=codes, session=_session_message(pair) if pair else None
        )

    async def GetOpenidConfiguration(
        self, request: auth_pb.GetOpenidConfigurationRequest, context: Context
    ) -> auth_pb.OpenidConfiguration:
        return self._configuration

    async def IssueToken(
        self, request: auth_pb.IssueTokenRequest, context: Context
    ) -> auth_pb.IssueTokenResponse:
        form = oauth.parse_form(request.form.content_type, request.form.data)
        basic = oauth.basic_credentials(header(context, "authorization"))
        grant = await self._run(
            self._tokens.grant, form, basic, user_agent=header(context, "user-agent")
        )
        return auth_pb.IssueTokenResponse(
            access_token=grant.access_token,
            token_type=TOKEN_TYPE,
            expires_in=grant.expires_in,
            refresh_token=grant.refresh_token or "",
        )

    async def IntrospectToken(
        self, request: auth_pb.IntrospectTokenRequest, context: Context
    ) -> auth_pb.IntrospectTokenResponse:
        form = oauth.parse_form(request.form.content_type, request.form.data)
        found = await self._run(
            self._introspection.introspect,
            form,
            basic=oauth.basic_credentials(header(context, "authorization")),
            bearer=bearer_token(context.invocation_metadata()),
        )
        return convert.introspection_to_message(found, token_type=TOKEN_TYPE)

    async def ListSessions(
        self, request: auth_pb.ListSessionsRequest, context: Context
    ) -> auth_pb.ListSessionsResponse:
        caller = current_principal()
        page = await self._run(
            self._auth.sessions,
            caller,
            request.user_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return auth_pb.ListSessionsResponse(
            sessions=[convert.session_to_message(s, current=caller.session_id) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def DeleteSession(
        self, request: auth_pb.DeleteSessionRequest, context: Context
    ) -> empty_pb2.Empty:
        await self._run(
            self._auth.end_session, current_principal(), request.user_id, request.session_id
        )
        return empty_pb2.Empty()

    async def GetJwks(
        self, request: auth_pb.GetJwksRequest, context: Context
    ) -> auth_pb.GetJwksResponse:
        return auth_pb.GetJwksResponse(
            keys=[resources.JsonWebKey(**jwk) for jwk in self._auth.jwks()]
        )

    async def WatchRevocations(
        self, request: auth_pb.WatchRevocationsRequest, context: Context
    ) -> AsyncIterator[auth_pb.WatchRevocationsResponse]:
        if request.after_sequence < 0:
            raise errors.invalid([errors.FieldViolation("after_sequence", "must not be negative")])
        async for batch, caught_up in self._revocations.follow(request.after_sequence):
            yield auth_pb.WatchRevocationsResponse(
                revocations=[convert.revocation_to_message(r) for r in batch], caught_up=caught_up
            )

    async def RotateSigningKey(
        self, request: auth_pb.RotateSigningKeyRequest, context: Context
    ) -> auth_pb.RotateSigningKeyResponse:
        key = await self._run(self._auth.rotate_key, current_principal())
        return auth_pb.RotateSigningKeyResponse(
            kid=key.kid,
            published_kids=[jwk["kid"] for jwk in self._auth.jwks()],
            rotate_time=to_timestamp(key.created_ns),
        )


class UserServicer(users_grpc.UserServiceServicer):
    """Translates UserService calls to :class:`users.directory.Directory`, in the blocking pool."""

    def __init__(self, directory: Directory, blocking: Blocking) -> None:
        self._directory = directory
        self._run = blocking.run

    async def GetUser(self, request: users_pb.GetUserRequest, context: Context) -> resources.User:
        user = await self._run(self._directory.get_user, current_principal(), request.user_id)
        return convert.user_to_message(user)

    async def GetUserPermissions(
        self, request: users_pb.GetUserPermissionsRequest, context: Context
    ) -> users_pb.GetUserPermissionsResponse:
        user, permissions = await self._run(
            self._directory.permissions, current_principal(), request.user_id
        )
        return users_pb.GetUserPermissionsResponse(
            user_id=user.user_id, roles=list(user.roles), permissions=list(permissions)
        )

    async def CreateUser(
        self, request: users_pb.CreateUserRequest, context: Context
    ) -> resources.User:
        created = await self._run(
            self._directory.create_user,
            current_principal(),
            username=request.user.username,
            password=request.password,
            display_name=request.user.display_name,
            email=request.user.email,
            roles=list(request.roles),
            user_roles=list(request.user.roles),
        )
        return convert.user_to_message(created)

    async def ListUsers(
        self, request: users_pb.ListUsersRequest, context: Context
    ) -> users_pb.ListUsersResponse:
        page = await self._run(
            self._directory.list_users, page_size=request.page_size, page_token=request.page_token
        )
        return users_pb.ListUsersResponse(
            users=[convert.user_to_message(u) for u in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateUser(
        self, request: users_pb.UpdateUserRequest, context: Context
    ) -> resources.User:
        updated = await self._run(
            self._directory.update_user,
            current_principal(),
            user_id=request.user.user_id,
            paths=list(request.update_mask.paths),
            display_name=request.user.display_name,
            email=request.user.email,
            etag=request.user.etag,
        )
        return convert.user_to_message(updated)

    async def DisableUser(
        self, request: users_pb.DisableUserRequest, context: Context
    ) -> resources.User:
        user = await self._run(
            self._directory.set_enabled, current_principal(), request.user_id, enabled=False
        )
        return convert.user_to_message(user)

    async def EnableUser(
        self, request: users_pb.EnableUserRequest, context: Context
    ) -> resources.User:
        user = await self._run(
            self._directory.set_enabled, current_principal(), request.user_id, enabled=True
        )
        return convert.user_to_message(user)

    async def SetUserRoles(
        self, request: users_pb.SetUserRolesRequest, context: Context
    ) -> resources.User:
        updated = await self._run(
            self._directory.set_roles,
            current_principal(),
            request.user_id,
            list(request.roles),
            etag=request.etag,
        )
        return convert.user_to_message(updated)

    async def SetUserPassword(
        self, request: users_pb.SetUserPasswordRequest, context: Context
    ) -> resources.User:
        user = await self._run(
            self._directory.set_password, current_principal(), request.user_id, request.password
        )
        return convert.user_to_message(user)

    async def IssuePasswordResetToken(
        self, request: users_pb.IssuePasswordResetTokenRequest, context: Context
    ) -> users_pb.IssuePasswordResetTokenResponse:
        token, expires_ns = await self._run(
            self._directory.issue_reset_token, current_principal(), request.user_id
        )
        return users_pb.IssuePasswordResetTokenResponse(
            reset_token=token, expire_time=to_timestamp(expires_ns)
        )

    async def UnlockUser(
        self, request: users_pb.UnlockUserRequest, context: Context
    ) -> resources.User:
        user = await self._run(self._directory.unlock, current_principal(), request.user_id)
        return convert.user_to_message(user)

    async def ListRoles(
        self, request: users_pb.ListRolesRequest, context: Context
    ) -> users_pb.ListRolesResponse:
        return users_pb.ListRolesResponse(
            roles=[convert.role_to_message(r) for r in await self._run(self._directory.list_roles)]
        )

    async def ResetUserMfa(
        self, request: users_pb.ResetUserMfaRequest, context: Context
    ) -> resources.User:
        user = await self._run(self._directory.reset_mfa, current_principal(), request.user_id)
        return convert.user_to_message(user)

    async def SetRoleMfaRequired(
        self, request: users_pb.SetRoleMfaRequiredRequest, context: Context
    ) -> resources.Role:
        role = await self._run(
            self._directory.set_role_mfa_required,
            current_principal(),
            request.name,
            required=request.mfa_required,
        )
        return convert.role_to_message(role)

    async def CreateRole(
        self, request: users_pb.CreateRoleRequest, context: Context
    ) -> resources.Role:
        role = await self._run(
            self._directory.create_role,
            current_principal(),
            name=request.role.name,
            description=request.role.description,
            permissions=list(request.role.permissions),
        )
        return convert.role_to_message(role)

    async def UpdateRole(
        self, request: users_pb.UpdateRoleRequest, context: Context
    ) -> resources.Role:
        role = await self._run(
            self._directory.update_role,
            current_principal(),
            name=request.role.name,
            paths=list(request.update_mask.paths),
            description=request.role.description,
            permissions=list(request.role.permissions),
            etag=request.role.etag,
        )
        return convert.role_to_message(role)

    async def DeleteRole(
        self, request: users_pb.DeleteRoleRequest, context: Context
    ) -> empty_pb2.Empty:
        await self._run(
            self._directory.delete_role, current_principal(), name=request.name, etag=request.etag
        )
        return empty_pb2.Empty()

    async def ListPermissions(
        self, request: users_pb.ListPermissionsRequest, context: Context
    ) -> users_pb.ListPermissionsResponse:
        return users_pb.ListPermissionsResponse(
            permissions=[
                users_pb.PermissionInfo(name=name, description=description)
                for name, description in self._directory.list_permissions()
            ]
        )


def _reasons() -> dict[str, tuple[str, ...]]:
    """The ErrorInfo reasons each RPC answers beyond the runtime's (see ``common/reasons.py``)."""
    passwords = ("PASSWORD_TOO_SHORT", "PASSWORD_TOO_LONG", "PASSWORD_TOO_GUESSABLE")
    login = ("INVALID_CREDENTIALS", "ACCOUNT_LOCKED", "ACCOUNT_DISABLED")
    tokens = tuple(reason for reason in runtime_reasons.TOKEN if reason != "TOKEN_MISSING")
    oauth = ("INVALID_REQUEST", "INVALID_CLIENT", "INVALID_GRANT", "UNSUPPORTED_GRANT_TYPE")
    client = ("MFA_REQUIRED", "PASSWORD_CHANGE_REQUIRED")
    auth = {
        "Login": login,
        "ValidateToken": ("TOKEN_MISSING", *tokens),
        "RefreshToken": (
            "TOKEN_INVALID",
            "TOKEN_REVOKED",
            "TOKEN_TYPE_MISMATCH",
            "REFRESH_TOKEN_REUSED",
            "SESSION_EXPIRED",
            "ACCOUNT_DISABLED",
        ),
        "ChangePassword": (
            "TOKEN_MISSING",
            *tokens,
            *login,
            *passwords,
            "PASSWORD_REUSED",
            "PASSWORD_CHANGED",
        ),
        "ResetPassword": ("RESET_TOKEN_INVALID", *passwords, "PASSWORD_REUSED"),
        "ListSessions": ("PAGE_TOKEN_INVALID", "MISSING_PERMISSION", "USER_NOT_FOUND"),
        "DeleteSession": ("SESSION_NOT_FOUND", "MISSING_PERMISSION"),
        "IssueToken": (*oauth, *client),
        "IntrospectToken": ("INVALID_REQUEST", "INVALID_CLIENT", "UNAUTHORIZED_CLIENT", *client),
        "VerifySecondFactor": (
            "MFA_TICKET_INVALID",
            "MFA_NOT_ENROLLED",
            "MFA_CODE_INVALID",
            "MFA_CODE_REUSED",
            "MFA_SECRET_UNREADABLE",
            "ACCOUNT_LOCKED",
            "ACCOUNT_DISABLED",
        ),
        "EnrollTotp": ("MFA_ALREADY_ENROLLED",),
        "ConfirmTotp": ("MFA_CODE_INVALID", "MFA_NOT_ENROLLED"),
        "WatchRevocations": ("SHUTTING_DOWN",),
    }
    user = ("USER_NOT_FOUND",)
    users = {
        "GetUser": (*user, "MISSING_PERMISSION"),
        "GetUserPermissions": (*user, "MISSING_PERMISSION"),
        "CreateUser": ("USER_EXISTS", "ROLE_NOT_FOUND", "ROLE_NOT_GRANTABLE", *passwords),
        "ListUsers": ("PAGE_TOKEN_INVALID",),
        "UpdateUser": (*user, "ETAG_MISMATCH", "ROLE_NOT_FOUND", "ROLE_NOT_GRANTABLE"),
        "DisableUser": (*user, "CANNOT_DISABLE_SELF", "LAST_ADMIN"),
        "EnableUser": user,
        "SetUserRoles": (
            *user,
            "ETAG_MISMATCH",
            "ROLE_NOT_FOUND",
            "ROLE_NOT_GRANTABLE",
            "LAST_ADMIN",
        ),
        "SetUserPassword": (*user, *passwords, "PASSWORD_REUSED"),
        "IssuePasswordResetToken": user,
        "UnlockUser": user,
        "ResetUserMfa": (*user, "MFA_NOT_ENROLLED"),
        "CreateRole": ("ROLE_EXISTS", "ROLE_NOT_GRANTABLE"),
        "UpdateRole": ("ROLE_NOT_FOUND", "ROLE_BUILTIN", "ROLE_NOT_GRANTABLE", "ETAG_MISMATCH"),
        "DeleteRole": (
            "ROLE_NOT_FOUND",
            "ROLE_BUILTIN",
            "ROLE_IN_USE",
            "ROLE_NOT_GRANTABLE",
            "ETAG_MISMATCH",
        ),
        "SetRoleMfaRequired": ("ROLE_NOT_FOUND", "ROLE_BUILTIN", "ROLE_NOT_GRANTABLE"),
    }
    table = {f"/{AUTH_SERVICE}/{name}": reasons for name, reasons in auth.items()}
    table.update({f"/{USER_SERVICE}/{name}": reasons for name, reasons in users.items()})
    return table


REASONS = _reasons()
"""Checked against the code by the tests: see ``gateway/reasons.py``."""
