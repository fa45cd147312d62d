"""Assembles the User Service and runs it (the ``mesh-users`` command)."""

from __future__ import annotations

from dataclasses import dataclass

from common import times
from common.auth import TokenVerifier
from common.blocking import Blocking
from common.db import Database
from common.denials import outbox_report
from common.notify import Notifier
from common.outbox import OUTBOX_TOPIC
from common.outbox_relay import OutboxRelay, audit_address
from common.server import MeshServer, ServiceRegistration, create_server, serve
from users import sql_store
from users.bootstrap import ensure_accounts
from users.credentials import Credentials
from users.directory import Directory
from users.housekeeping import Housekeeper
from users.keys import KeyRing
from users.keystore import Sealer
from users.lockout import Lockout
from users.passwords import PasswordRules, Passwords
from users.revocations import RevocationLog
from users.roles import BUILTIN_ROLES
from users.service import AuthService
from users.servicers import (
    AUTH_SERVICE,
    DOMAIN,
    POLICIES,
    USER_SERVICE,
    AuthServicer,
    UserServicer,
)
from users.settings import Settings
from users.tokens import Identity, OwnServiceTokens, TokenIssuer
from users.v1 import auth_service_pb2_grpc, user_service_pb2_grpc


@dataclass(frozen=True)
class Components:
    """The assembled domain of one User Service, before any gRPC server exists."""

    store: sql_store.SqlUserStore
    blocking: Blocking
    auth: AuthService
    directory: Directory
    revocations: RevocationLog
    verifier: TokenVerifier
    housekeeper: Housekeeper
    issuer: TokenIssuer
    keys: KeyRing

    def close(self) -> None:
        self.blocking.close()
        self.store.close()


def build_components(settings: Settings) -> Components:
    """Migrate the schema, load or create the keys, create the first accounts."""
    store = sql_store.SqlUserStore(Database(settings.database_url))
    store.migrate()
    blocking = Blocking.of(settings.runtime)
    passwords = Passwords(settings.password_hash_profile)
    with store.db.exclusive("first-start"):  # one replica creates them, the others find them
        ensure_accounts(
            store, passwords, data_dir=settings.data_dir, admin_password=settings.admin_password
        )
    sealer = Sealer(settings.key_encryption_key)
    keys = KeyRing(
        store,
        sealer,
        retention_seconds=max(settings.access_token_seconds, settings.refresh_token_seconds),
        legacy_folder=settings.keys_dir,
    )
    issuer = TokenIssuer(
        keys,
        issuer=settings.runtime.issuer,
        audience=settings.runtime.audience,
        access_seconds=settings.access_token_seconds,
        refresh_seconds=settings.refresh_token_seconds,
    )
    revocations = RevocationLog(
        store,
        blocking=blocking,
        poll_seconds=None if store.db.is_sqlite else settings.revocation_poll_seconds,
        buffer=settings.runtime.stream_buffer,
    )
    verifier = TokenVerifier(
        issuer=settings.runtime.issuer,
        audience=settings.runtime.audience,
        keys=keys,
        revocations=revocations,
        cache_entries=settings.runtime.token_cache_entries,
    )
    credentials = Credentials(
        store=store,
        passwords=passwords,
        rules=PasswordRules(
            min_length=settings.password_min_length,
            min_score=settings.password_min_score,
            history=settings.password_history,
        ),
        session_lifetime_ns=times.seconds(
            max(settings.access_token_seconds, settings.refresh_token_seconds)
        ),
    )
    auth = AuthService(
        store=store,
        credentials=credentials,
        keys=keys,
        issuer=issuer,
        verifier=verifier,
        lockout=Lockout(
            max_failures=settings.login_max_failures,
            seconds=settings.lockout_seconds,
            max_locks=settings.login_max_locks,
            reset_seconds=settings.login_failure_reset_seconds,
        ),
        session_max_seconds=settings.session_max_seconds,
        mfa_ticket_seconds=settings.mfa_ticket_seconds,
        totp_issuer=settings.runtime.issuer,
        sealer=sealer,
    )
    directory = Directory(
        store=store, credentials=credentials, reset_token_seconds=settings.reset_token_seconds
    )
    housekeeper = Housekeeper(
        store,
        blocking=blocking,
        session_lifetime_ns=auth.session_lifetime_ns,
        failure_reset_seconds=settings.login_failure_reset_seconds,
    )
    return Components(
        store=store,
        blocking=blocking,
        auth=auth,
        directory=directory,
        revocations=revocations,
        verifier=verifier,
        housekeeper=housekeeper,
        issuer=issuer,
        keys=keys,
    )


SERVICE_IDENTITY = Identity(
    user_id="svc-users",
    username="svc-users",
    roles=("service",),
    permissions=BUILTIN_ROLES["service"].permissions,
)
"""Who the User Service is when it ships its own outbox to the Audit Service."""


def build_server(settings: Settings, *, audit_target: str | None = None) -> MeshServer:
    """A ready-to-start User Service on ``settings.listen``; call it in the serving loop.

    With ``audit_target``, a relay ships the outbox (logins, logouts, user changes) to the
    Audit Service there; without it, events wait in the outbox.
    """
    parts = build_components(settings)
    auth_servicer = AuthServicer(
        parts.auth,
        parts.verifier,
        parts.revocations,
        parts.blocking,
        issuer=settings.runtime.issuer,
        public_url=settings.public_url,
    )
    user_servicer = UserServicer(parts.directory, parts.blocking)
    server = create_server(
        settings.listen,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                AUTH_SERVICE, auth_service_pb2_grpc.add_AuthServiceServicer_to_server, auth_servicer
            ),
            ServiceRegistration(
                USER_SERVICE, user_service_pb2_grpc.add_UserServiceServicer_to_server, user_servicer
            ),
        ],
        policies=POLICIES,
        verifier=parts.verifier,
        settings=settings.runtime,
        blocking=parts.blocking,
        report_denial=outbox_report(
            parts.store.record_event, service="users", blocking=parts.blocking
        ),
    )
    server.background.extend([parts.revocations.run, parts.housekeeper.run])
    if not parts.store.db.is_sqlite:  # replicas share it: catch up on a lost announcement
        server.background.append(lambda: parts.keys.follow(parts.blocking))
    server.on_drain.append(parts.revocations.stop)
    server.on_stop.append(parts.store.close)
    server.metrics.sample(parts.store.db.samples)
    Notifier(
        parts.store.db,
        [OUTBOX_TOPIC, sql_store.REVOCATIONS_TOPIC, sql_store.SIGNING_KEYS_TOPIC],
        blocking=parts.blocking,
    ).attach(server)
    if audit_target:
        OutboxRelay(
            parts.store.db,
            sql_store.outbox,
            target=audit_target,
            source="/users",
            token_source=OwnServiceTokens(parts.issuer, SERVICE_IDENTITY),
            blocking=parts.blocking,
        ).attach(server)
    return server


def main() -> None:
    settings = Settings.from_env()
    serve("users", settings.runtime, lambda: build_server(settings, audit_target=audit_address()))


if __name__ == "__main__":
    main()
