"""gRPC servicers: translate protos to domain calls and back, nothing more."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from common import errors
from common.interceptors import bearer_token, current_principal
from users import store
from users.directory import Directory
from users.revocations import Revocation, RevocationLog, follow
from users.service import AuthService
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import auth_service_pb2_grpc as auth_grpc
from users.v1 import resources_pb2 as resources
from users.v1 import user_service_pb2 as users_pb
from users.v1 import user_service_pb2_grpc as users_grpc

TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth token_type, not a secret


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(round(seconds * 1_000_000))
    return stamp


def user_message(user: store.UserRecord) -> resources.User:
    return resources.User(
        user_id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        roles=list(user.roles),
        disabled=user.disabled,
        create_time=_timestamp(user.created_at),
        update_time=_timestamp(user.updated_at),
        etag=user.etag,
    )


def revocation_message(revocation: Revocation) -> resources.Revocation:
    return resources.Revocation(
        sequence=revocation.sequence,
        session_id=revocation.session_id,
        token_id=revocation.token_id or "",
        reason=revocation.reason,
        revoke_time=_timestamp(revocation.revoked_at),
        expire_time=_timestamp(revocation.expires_at),
    )


class AuthServicer(auth_grpc.AuthServiceServicer):
    def __init__(self, auth: AuthService, revocations: RevocationLog) -> None:
        self._auth = auth
        self._revocations = revocations

    def Login(
        self, request: auth_pb.LoginRequest, context: grpc.ServicerContext
    ) -> auth_pb.LoginResponse:
        pair = self._auth.login(request.username, request.password)
        return auth_pb.LoginResponse(
            access_token=pair.access.token,
            refresh_token=pair.refresh.token,
            token_type=TOKEN_TYPE,
            expires_in=pair.access.lifetime,
            refresh_expires_in=pair.refresh.lifetime,
            user=user_message(pair.user),
        )

    def Logout(
        self, request: auth_pb.LogoutRequest, context: grpc.ServicerContext
    ) -> auth_pb.LogoutResponse:
        return auth_pb.LogoutResponse(session_id=self._auth.logout(current_principal()))

    def ValidateToken(
        self, request: auth_pb.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb.ValidateTokenResponse:
        principal = self._auth.validate(
            request.token or bearer_token(context.invocation_metadata())
        )
        return auth_pb.ValidateTokenResponse(
            valid=True,
            user_id=principal.user_id,
            username=principal.username,
            roles=list(principal.roles),
            permissions=sorted(principal.permissions),
            expires_at=_timestamp(principal.expires_at),
            session_id=principal.session_id,
        )

    def RefreshToken(
        self, request: auth_pb.RefreshTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb.RefreshTokenResponse:
        pair = self._auth.refresh(request.refresh_token)
        return auth_pb.RefreshTokenResponse(
            access_token=pair.access.token,
            refresh_token=pair.refresh.token,
            token_type=TOKEN_TYPE,
            expires_in=pair.access.lifetime,
            refresh_expires_in=pair.refresh.lifetime,
        )

    def GetJwks(
        self, request: auth_pb.GetJwksRequest, context: grpc.ServicerContext
    ) -> auth_pb.GetJwksResponse:
        return auth_pb.GetJwksResponse(
            keys=[resources.JsonWebKey(**jwk) for jwk in self._auth.jwks()]
        )

    def WatchRevocations(
        self, request: auth_pb.WatchRevocationsRequest, context: grpc.ServicerContext
    ) -> Iterator[auth_pb.WatchRevocationsResponse]:
        if request.after_sequence < 0:
            raise errors.invalid([errors.FieldViolation("after_sequence", "must not be negative")])
        for batch, caught_up in follow(
            self._revocations, request.after_sequence, active=context.is_active
        ):
            yield auth_pb.WatchRevocationsResponse(
                revocations=[revocation_message(r) for r in batch], caught_up=caught_up
            )

    def RotateSigningKey(
        self, request: auth_pb.RotateSigningKeyRequest, context: grpc.ServicerContext
    ) -> auth_pb.RotateSigningKeyResponse:
        key = self._auth.rotate_key()
        return auth_pb.RotateSigningKeyResponse(
            kid=key.kid,
            published_kids=[jwk["kid"] for jwk in self._auth.jwks()],
            rotate_time=_timestamp(key.created_at),
        )


class UserServicer(users_grpc.UserServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def GetUser(
        self, request: users_pb.GetUserRequest, context: grpc.ServicerContext
    ) -> resources.User:
        return user_message(self._directory.get_user(current_principal(), request.user_id))

    def GetUserPermissions(
        self, request: users_pb.GetUserPermissionsRequest, context: grpc.ServicerContext
    ) -> users_pb.GetUserPermissionsResponse:
        user, permissions = self._directory.permissions(current_principal(), request.user_id)
        return users_pb.GetUserPermissionsResponse(
            user_id=user.user_id, roles=list(user.roles), permissions=list(permissions)
        )

    def CreateUser(
        self, request: users_pb.CreateUserRequest, context: grpc.ServicerContext
    ) -> resources.User:
        created = self._directory.create_user(
            current_principal(),
            username=request.user.username,
            password=request.password,
            display_name=request.user.display_name,
            email=request.user.email,
            roles=list(request.roles),
        )
        return user_message(created)

    def ListUsers(
        self, request: users_pb.ListUsersRequest, context: grpc.ServicerContext
    ) -> users_pb.ListUsersResponse:
        page = self._directory.list_users(
            page_size=request.page_size, page_token=request.page_token
        )
        return users_pb.ListUsersResponse(
            users=[user_message(u) for u in page.users], next_page_token=page.next_page_token
        )

    def UpdateUser(
        self, request: users_pb.UpdateUserRequest, context: grpc.ServicerContext
    ) -> resources.User:
        updated = self._directory.update_user(
            current_principal(),
            user_id=request.user.user_id,
            paths=list(request.update_mask.paths),
            display_name=request.user.display_name,
            email=request.user.email,
            etag=request.user.etag,
        )
        return user_message(updated)

    def DisableUser(
        self, request: users_pb.DisableUserRequest, context: grpc.ServicerContext
    ) -> resources.User:
        return user_message(
            self._directory.set_enabled(current_principal(), request.user_id, enabled=False)
        )

    def EnableUser(
        self, request: users_pb.EnableUserRequest, context: grpc.ServicerContext
    ) -> resources.User:
        return user_message(
            self._directory.set_enabled(current_principal(), request.user_id, enabled=True)
        )

    def SetUserRoles(
        self, request: users_pb.SetUserRolesRequest, context: grpc.ServicerContext
    ) -> resources.User:
        updated = self._directory.set_roles(
            current_principal(), request.user_id, list(request.roles), etag=request.etag
        )
        return user_message(updated)

    def ListRoles(
        self, request: users_pb.ListRolesRequest, context: grpc.ServicerContext
    ) -> users_pb.ListRolesResponse:
        return users_pb.ListRolesResponse(
            roles=[
                resources.Role(
                    name=role.name,
                    description=role.description,
                    permissions=list(role.permissions),
                )
                for role in self._directory.list_roles()
            ]
        )
