"""Assembles the User Service and runs it (the ``mesh-users`` command)."""

from __future__ import annotations

from common.auth import TokenVerifier
from common.config import RuntimeSettings
from common.db import Database
from common.interceptors import AUTHENTICATED, PUBLIC, Policy, requires
from common.logs import configure_logging
from common.server import MeshServer, ServiceRegistration, create_server
from users import store
from users.bootstrap import ensure_accounts
from users.directory import Directory
from users.keys import KeyRing
from users.passwords import Passwords
from users.revocations import RevocationLog
from users.service import AuthService, Lockout
from users.servicer import AuthServicer, UserServicer
from users.settings import Settings
from users.tokens import TokenIssuer
from users.v1 import auth_service_pb2_grpc, user_service_pb2_grpc

DOMAIN = "users.mesh"
AUTH_SERVICE = "users.v1.AuthService"
USER_SERVICE = "users.v1.UserService"

POLICIES: dict[str, Policy] = {
    f"/{AUTH_SERVICE}/Login": PUBLIC,
    f"/{AUTH_SERVICE}/Logout": AUTHENTICATED,
    # Checks the token it is given; an invalid one is its answer, not a refusal to answer.
    f"/{AUTH_SERVICE}/ValidateToken": PUBLIC,
    f"/{AUTH_SERVICE}/RefreshToken": PUBLIC,
    # Verifiers need keys and revocations before they hold any credential; both carry only
    # public keys and opaque ids.
    f"/{AUTH_SERVICE}/GetJwks": PUBLIC,
    f"/{AUTH_SERVICE}/WatchRevocations": PUBLIC,
    f"/{AUTH_SERVICE}/RotateSigningKey": requires("*"),
    # The user themself, or users:read; checked in the directory.
    f"/{USER_SERVICE}/GetUser": AUTHENTICATED,
    f"/{USER_SERVICE}/GetUserPermissions": AUTHENTICATED,
    f"/{USER_SERVICE}/CreateUser": requires("users:write"),
    f"/{USER_SERVICE}/ListUsers": requires("users:read"),
    f"/{USER_SERVICE}/UpdateUser": requires("users:write"),
    f"/{USER_SERVICE}/DisableUser": requires("users:write"),
    f"/{USER_SERVICE}/EnableUser": requires("users:write"),
    f"/{USER_SERVICE}/SetUserRoles": requires("users:write"),
    f"/{USER_SERVICE}/ListRoles": AUTHENTICATED,
}


def build_server(settings: Settings) -> MeshServer:
    """A ready-to-start User Service: schema migrated, keys loaded, first accounts created."""
    db = Database(settings.database_url)
    db.migrate(store.MIGRATIONS)
    passwords = Passwords(settings.password_hash_profile)
    ensure_accounts(
        db, passwords, data_dir=settings.data_dir, admin_password=settings.admin_password
    )
    keys = KeyRing(
        settings.keys_dir,
        retention_seconds=max(settings.access_token_seconds, settings.refresh_token_seconds),
    )
    issuer = TokenIssuer(
        keys,
        issuer=settings.runtime.issuer,
        audience=settings.runtime.audience,
        access_seconds=settings.access_token_seconds,
        refresh_seconds=settings.refresh_token_seconds,
    )
    revocations = RevocationLog(db, poll_seconds=settings.revocation_poll_seconds)
    verifier = TokenVerifier(
        issuer=settings.runtime.issuer,
        audience=settings.runtime.audience,
        keys=keys,
        revocations=revocations,
    )
    auth = AuthService(
        db=db,
        passwords=passwords,
        keys=keys,
        issuer=issuer,
        verifier=verifier,
        revocations=revocations,
        lockout=Lockout(max_failures=settings.login_max_failures, seconds=settings.lockout_seconds),
    )
    directory = Directory(
        db=db,
        passwords=passwords,
        revocations=revocations,
        session_lifetime=auth.session_lifetime,
    )
    auth_servicer = AuthServicer(auth, revocations)
    user_servicer = UserServicer(directory)
    server = create_server(
        settings.address,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                AUTH_SERVICE,
                lambda s: auth_service_pb2_grpc.add_AuthServiceServicer_to_server(auth_servicer, s),
            ),
            ServiceRegistration(
                USER_SERVICE,
                lambda s: user_service_pb2_grpc.add_UserServiceServicer_to_server(user_servicer, s),
            ),
        ],
        policies=POLICIES,
        verifier=verifier,
        settings=settings.runtime,
    )
    revocations.start()
    server.on_stop.extend([db.dispose, revocations.stop])
    return server


def main() -> None:
    runtime = RuntimeSettings.from_env()
    configure_logging("users", runtime.log_level)
    build_server(Settings.from_env()).serve_forever()


if __name__ == "__main__":
    main()
