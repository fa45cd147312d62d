"""The Audit Service process: ``mesh-audit`` (or ``python -m audit.server``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.checkpoints import NoteSigner, load_or_create_key
from audit.events import StoredEvent
from audit.ingest import Ingestor
from audit.service import AuditService, Limits
from audit.servicers import DOMAIN, POLICIES, SERVICE, AuditServicer
from audit.settings import Settings
from audit.sql_store import EVENTS_TOPIC, SqlEventStore
from audit.subscriptions import Fanout
from audit.transparency import TransparencyLog
from audit.v1 import audit_pb2_grpc
from common import times
from common.auth import JwksKeyProvider, NoRevocations, TokenVerifier
from common.blocking import Blocking
from common.config import RuntimeSettings, data_dir
from common.db import Database
from common.denials import Denial, denial_event
from common.notify import Notifier
from common.server import MeshServer, ServiceRegistration, create_server, serve
from common.tickets import TicketBook
from common.users_client import connect_users


def build_server(settings: Settings, verifier: TokenVerifier) -> MeshServer:
    """A ready-to-start server with its database migrated; call it in the serving loop.

    Stopping it commits what is queued and releases everything.
    """
    store = SqlEventStore(Database(settings.database_url))
    store.migrate()
    blocking = Blocking.of(settings.runtime)
    fanout = Fanout(
        store,
        blocking=blocking,
        # One commit (up to max_batch events) reaches a subscriber at once: a buffer smaller
        # than that would cut off a subscriber that keeps up.
        buffer=max(settings.runtime.stream_buffer, settings.max_batch),
        poll_seconds=settings.subscribe_poll_seconds,
        head=store.last_sequence(),
    )
    key_file = settings.log_key_file
    log = TransparencyLog(
        store,
        NoteSigner(settings.log_origin, load_or_create_key(key_file)),
        interval=settings.checkpoint_seconds,
        last_signed_file=key_file.with_name(f"{key_file.stem}.last-checkpoint"),
        blocking=blocking,
    )

    def committed(stored: Sequence[StoredEvent]) -> None:
        fanout.committed(stored)
        log.committed(stored)

    ingestor = Ingestor(
        store,
        blocking=blocking,
        max_batch=settings.max_batch,
        queue_limit=settings.queue_limit,
        on_commit=committed,
    )
    tickets = TicketBook(
        store.ticket_key(),
        lifetime_ns=times.seconds(settings.ticket_seconds),
        revocations=verifier.revocations,
    )
    service = AuditService(
        store=store,
        ingestor=ingestor,
        fanout=fanout,
        log=log,
        limits=Limits(stream_window=settings.stream_window),
        tickets=tickets,
    )
    servicer = AuditServicer(service, blocking)

    async def record_denial(denial: Denial) -> None:
        await service.record_own(denial_event(denial, service="audit"))

    server = create_server(
        settings.listen,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                SERVICE, audit_pb2_grpc.add_AuditServiceServicer_to_server, servicer
            )
        ],
        policies=POLICIES,
        verifier=verifier,
        settings=settings.runtime,
        blocking=blocking,
        report_denial=record_denial,
        tickets=tickets,
    )
    ingestor.start()
    server.metrics.sample(store.db.samples)
    store.db.on_commit(EVENTS_TOPIC, fanout.announced)
    Notifier(store.db, [EVENTS_TOPIC], blocking=blocking).attach(server)
    server.metrics.sample(log.samples)
    server.background.extend([fanout.run, log.run])
    server.on_drain.append(fanout.close)
    server.on_stop.extend([store.close, ingestor.close])
    return server


def jwks_file_verifier(path: Path, runtime: RuntimeSettings) -> TokenVerifier:
    """Verify with a fixed key set, for deployments that distribute the User Service's JWKS.

    Tokens stay valid until they expire: revocations are only seen through the User Service.
    """

    async def read() -> dict[str, Any]:
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    return TokenVerifier(
        issuer=runtime.issuer,
        audience=runtime.audience,
        keys=JwksKeyProvider(read),
        revocations=NoRevocations(),
        cache_entries=runtime.token_cache_entries,
    )


def main() -> None:
    settings = Settings.from_env()

    def build() -> MeshServer:
        if settings.jwks_file is not None:
            return build_server(settings, jwks_file_verifier(settings.jwks_file, settings.runtime))
        users = connect_users(
            settings.runtime,
            target=settings.users_addr,
            default_username="svc-audit",
            data_dir=data_dir(),
        )
        server = build_server(settings, users.verifier)
        users.attach(server)
        return server

    serve("audit", settings.runtime, build)


if __name__ == "__main__":
    main()
