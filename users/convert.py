"""Translation between the ``users.v1`` messages and the User Service's domain records."""

from __future__ import annotations

from common.times import to_timestamp
from users.oauth import Introspection
from users.store import Revocation, RoleDefinition, SessionRecord, UserRecord
from users.v1 import auth_service_pb2 as auth_pb
from users.v1 import resources_pb2 as resources


def user_to_message(user: UserRecord) -> resources.User:
    return resources.User(
        user_id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        roles=list(user.roles),
        disabled=user.disabled,
        create_time=to_timestamp(user.created_ns),
        update_time=to_timestamp(user.updated_ns),
        etag=user.etag,
        password_change_required=user.password_change_required,
        mfa_enrolled=user.mfa_enrolled,
    )


def revocation_to_message(revocation: Revocation) -> resources.Revocation:
    return resources.Revocation(
        sequence=revocation.sequence,
        session_id=revocation.session_id,
        token_id=revocation.token_id or "",
        reason=revocation.reason,
        revoke_time=to_timestamp(revocation.revoked_ns),
        expire_time=to_timestamp(revocation.expires_ns),
    )


def role_to_message(role: RoleDefinition) -> resources.Role:
    return resources.Role(
        name=role.name,
        description=role.description,
        permissions=list(role.permissions),
        mfa_required=role.mfa_required,
        builtin=role.builtin,
        etag=role.etag,
    )


def session_to_message(session: SessionRecord, *, current: str) -> resources.Session:
    """``current`` is the caller's own session id."""
    return resources.Session(
        session_id=session.session_id,
        user_id=session.user_id,
        create_time=to_timestamp(session.created_ns),
        refresh_time=to_timestamp(session.refreshed_ns),
        client_address=session.client_address,
        user_agent=session.user_agent,
        current=session.session_id == current,
    )


def introspection_to_message(
    found: Introspection | None, *, token_type: str
) -> auth_pb.IntrospectTokenResponse:
    """RFC 7662's answer: ``active`` alone for None, else every field set."""
    if found is None:
        return auth_pb.IntrospectTokenResponse(active=False)
    return auth_pb.IntrospectTokenResponse(
        active=True,
        scope=found.scope,
        username=found.username,
        token_type=token_type,
        exp=found.exp,
        iat=found.iat,
        nbf=found.nbf,
        sub=found.sub,
        aud=found.aud,
        iss=found.iss,
        jti=found.jti,
    )
