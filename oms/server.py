"""The OMS process: ``mesh-oms`` (or ``python -m oms.server``)."""

from __future__ import annotations

import logging
import sys

from common.auth import TokenVerifier
from common.db import Database
from common.logs import configure_logging
from common.server import MeshServer, ServiceRegistration, create_server
from oms.service import OntologyService
from oms.servicers import (
    BRANCH_SERVICE,
    SCHEMA_SERVICE,
    BranchServicer,
    SchemaServicer,
    policies,
)
from oms.settings import Settings
from oms.sql_store import SqlStore
from oms.v1 import branch_service_pb2_grpc, schema_service_pb2_grpc

DOMAIN = "oms.mesh"
log = logging.getLogger("mesh.oms")


def build_server(settings: Settings, verifier: TokenVerifier | None) -> MeshServer:
    """A bound, not yet started OMS on its store; stopping it closes the store."""
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
    return server


def main() -> int:
    settings = Settings.from_env()
    configure_logging("oms", settings.runtime.log_level)
    from common.users_client import UsersClient  # type: ignore[import-not-found,unused-ignore]

    users = UsersClient(settings.users_addr)
    server = build_server(settings, users.verifier(settings.runtime))
    users.start()
    server.on_stop.append(users.close)
    log.info("starting", extra={"listen": settings.listen})
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
