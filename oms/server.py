"""The OMS process: ``mesh-oms`` (or ``python -m oms.server``)."""

from __future__ import annotations

import logging
import sys

from common.auth import TokenVerifier
from common.config import data_dir
from common.db import Database
from common.logs import configure_logging
from common.outbox_relay import OutboxRelay, TokenSource, audit_address
from common.server import MeshServer, ServiceRegistration, create_server
from common.users_client import ServiceTokenSource, UsersClient
from oms.service import OntologyService
from oms.servicers import (
    BRANCH_SERVICE,
    SCHEMA_SERVICE,
    BranchServicer,
    SchemaServicer,
    policies,
)
from oms.settings import Settings
from oms.sql_store import SqlStore, outbox
from oms.v1 import branch_service_pb2_grpc, schema_service_pb2_grpc

DOMAIN = "oms.mesh"
log = logging.getLogger("mesh.oms")


def build_server(
    settings: Settings,
    verifier: TokenVerifier | None,
    *,
    audit_target: str | None = None,
    audit_token: TokenSource | None = None,
) -> MeshServer:
    """A bound, not yet started OMS on its store; stopping it closes the store.

    With ``audit_target`` and ``audit_token``, a relay ships the outbox (schema, branch and
    validation events) to the Audit Service; without them, events wait in the outbox.
    """
    store = SqlStore(Database(settings.database_url), cache_entries=settings.cache_entries)
    service = OntologyService(store)
    schema = SchemaServicer(service)
    branches = BranchServicer(service)
    server = create_server(
        settings.listen,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                SCHEMA_SERVICE,
                lambda s: schema_service_pb2_grpc.add_SchemaServiceServicer_to_server(schema, s),
            ),
            ServiceRegistration(
                BRANCH_SERVICE,
                lambda s: branch_service_pb2_grpc.add_BranchServiceServicer_to_server(branches, s),
            ),
        ],
        policies=policies(),
        verifier=verifier,
        settings=settings.runtime,
    )
    server.on_stop.append(store.close)
    if audit_target and audit_token:
        relay = OutboxRelay(
            store.db, outbox, target=audit_target, source="/oms", token_source=audit_token
        )
        relay.start()
        server.on_stop.append(relay.close)
    return server


def main() -> int:
    settings = Settings.from_env()
    configure_logging("oms", settings.runtime.log_level)
    users = UsersClient(settings.users_addr)
    server = build_server(
        settings,
        users.verifier(settings.runtime),
        audit_target=audit_address(),
        audit_token=ServiceTokenSource.from_env(
            users, default_username="svc-oms", data_dir=data_dir()
        ),
    )
    users.start()
    server.readiness = users.revocations.wait_ready
    server.on_stop.append(users.close)
    log.info("starting", extra={"listen": settings.listen})
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
