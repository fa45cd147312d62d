"""The Audit Service process: ``mesh-audit`` (or ``python -m audit.server``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from audit.ingest import Ingestor
from audit.servicer import DOMAIN, AuditServicer, Limits
from audit.settings import Settings
from audit.store import EventStore
from audit.subscriptions import CommitSignal
from audit.v1 import audit_pb2_grpc
from common.auth import JwksKeyProvider, NoRevocations, TokenVerifier
from common.config import RuntimeSettings
from common.db import Database
from common.interceptors import Policy, requires
from common.logs import configure_logging
from common.server import MeshServer, ServiceRegistration, create_server
from common.users_client import UsersClient

log = logging.getLogger("audit.server")

SERVICE = "audit.v1.AuditService"
_WRITE = requires("audit:write")
_READ = requires("audit:read")
POLICIES: dict[str, Policy] = {
    f"/{SERVICE}/PublishEvent": _WRITE,
    f"/{SERVICE}/PublishEvents": _WRITE,
    f"/{SERVICE}/StreamEvents": _WRITE,
    f"/{SERVICE}/QueryEvents": _READ,
    f"/{SERVICE}/GetEvent": _READ,
    f"/{SERVICE}/SubscribeEvents": _READ,
    f"/{SERVICE}/VerifyLog": _READ,
}


def build_server(settings: Settings, verifier: TokenVerifier) -> MeshServer:
    """A ready-to-start server with its database migrated; stopping it releases everything."""
    db = Database(settings.database_url)
    store = EventStore(db)
    store.migrate()
    signal = CommitSignal(store.last_sequence())
    ingestor = Ingestor(
        store,
        max_batch=settings.max_batch,
        queue_limit=settings.queue_limit,
        on_commit=signal.committed,
    )
    servicer = AuditServicer(
        store=store,
        ingestor=ingestor,
        signal=signal,
        limits=Limits(
            stream_window=settings.stream_window,
            max_subscriptions=settings.max_subscriptions,
            subscribe_poll_seconds=settings.subscribe_poll_seconds,
        ),
    )
    server = create_server(
        settings.listen,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                SERVICE, lambda s: audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, s)
            )
        ],
        policies=POLICIES,
        verifier=verifier,
        settings=settings.runtime,
    )
    ingestor.start()
    server.on_drain.append(signal.close)
    server.on_stop.extend([db.dispose, ingestor.close])
    return server


def jwks_file_verifier(path: Path, runtime: RuntimeSettings) -> TokenVerifier:
    """Verify with a fixed key set, for deployments that distribute the User Service's JWKS.

    Tokens stay valid until they expire: revocations are only seen through the User Service.
    """

    def read() -> dict[str, Any]:
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    return TokenVerifier(
        issuer=runtime.issuer,
        audience=runtime.audience,
        keys=JwksKeyProvider(read),
        revocations=NoRevocations(),
    )


def main() -> None:
    settings = Settings.from_env()
    configure_logging("audit", settings.runtime.log_level)
    if settings.jwks_file is not None:
        verifier = jwks_file_verifier(settings.jwks_file, settings.runtime)
        server = build_server(settings, verifier)
    else:
        users = UsersClient(settings.users_addr)
        verifier = users.verifier(settings.runtime)
        users.start()
        server = build_server(settings, verifier)
        server.readiness = users.revocations.wait_ready
        server.on_stop.append(users.close)
    server.serve_forever()


if __name__ == "__main__":
    main()
