"""The OMS process: ``mesh-oms`` (or ``python -m oms.server``)."""

from __future__ import annotations

from common.auth import TokenVerifier
from common.blocking import Blocking
from common.config import data_dir
from common.db import Database
from common.denials import outbox_report
from common.notify import Notifier
from common.outbox import OUTBOX_TOPIC
from common.outbox_relay import OutboxRelay, audit_address
from common.server import MeshServer, ServiceRegistration, create_server, serve
from common.users_client import TokenSource, connect_users
from oms import convert
from oms.data import ObjectService
from oms.history import HistoryService
from oms.proposals import ProposalService
from oms.service import OntologyService
from oms.servicers import (
    ACTION_SERVICE,
    BRANCH_SERVICE,
    DOMAIN,
    OBJECT_SERVICE,
    POLICIES,
    PROPOSAL_SERVICE,
    SCHEMA_SERVICE,
    TAG_SERVICE,
    ActionServicer,
    BranchServicer,
    ObjectServicer,
    ProposalServicer,
    ResourceMessages,
    SchemaServicer,
    TagServicer,
)
from oms.settings import Settings
from oms.sql_store import SqlStore, outbox
from oms.v1 import (
    action_service_pb2_grpc,
    branch_service_pb2_grpc,
    object_service_pb2_grpc,
    proposal_service_pb2_grpc,
    schema_service_pb2_grpc,
    tag_service_pb2_grpc,
)


def build_server(
    settings: Settings,
    verifier: TokenVerifier | None,
    *,
    audit_target: str | None = None,
    audit_token: TokenSource | None = None,
) -> MeshServer:
    """A bound, not yet started OMS on its store; call it in the serving loop.

    Stopping it closes the store.

    With ``audit_target`` and ``audit_token``, a relay ships the outbox (schema, branch and
    validation events) to the Audit Service; without them, events wait in the outbox.
    """
    store = SqlStore(Database(settings.database_url), cache_entries=settings.cache_entries)
    service = OntologyService(store)
    blocking = Blocking.of(settings.runtime)
    schema = SchemaServicer(service, blocking, ResourceMessages(settings.cache_entries))
    history = HistoryService(service)
    branches = BranchServicer(service, history, blocking)
    tags = TagServicer(service, history, blocking)
    proposals = ProposalServicer(ProposalService(service, store), blocking)
    data = ObjectService(service)
    objects = ObjectServicer(data, blocking)
    actions = ActionServicer(data, blocking)
    server = create_server(
        settings.listen,
        domain=DOMAIN,
        services=[
            ServiceRegistration(
                SCHEMA_SERVICE, schema_service_pb2_grpc.add_SchemaServiceServicer_to_server, schema
            ),
            ServiceRegistration(
                BRANCH_SERVICE,
                branch_service_pb2_grpc.add_BranchServiceServicer_to_server,
                branches,
            ),
            ServiceRegistration(
                PROPOSAL_SERVICE,
                proposal_service_pb2_grpc.add_ProposalServiceServicer_to_server,
                proposals,
            ),
            ServiceRegistration(
                TAG_SERVICE, tag_service_pb2_grpc.add_TagServiceServicer_to_server, tags
            ),
            ServiceRegistration(
                ACTION_SERVICE,
                action_service_pb2_grpc.add_ActionServiceServicer_to_server,
                actions,
            ),
            ServiceRegistration(
                OBJECT_SERVICE,
                object_service_pb2_grpc.add_ObjectServiceServicer_to_server,
                objects,
            ),
        ],
        policies=POLICIES,
        verifier=verifier,
        settings=settings.runtime,
        blocking=blocking,
        error_details=convert.detail_to_message,
        report_denial=outbox_report(
            lambda e: store.record_events([e]), service="oms", blocking=blocking
        ),
    )
    server.on_stop.append(store.close)
    server.metrics.sample(store.db.samples)
    Notifier(store.db, [OUTBOX_TOPIC], blocking=blocking).attach(server)
    if audit_target and audit_token:
        OutboxRelay(
            store.db,
            outbox,
            target=audit_target,
            source="/oms",
            token_source=audit_token,
            blocking=blocking,
        ).attach(server)
    return server


def main() -> None:
    settings = Settings.from_env()

    def build() -> MeshServer:
        users = connect_users(
            settings.runtime,
            target=settings.users_addr,
            default_username="svc-oms",
            data_dir=data_dir(),
        )
        server = build_server(
            settings, users.verifier, audit_target=audit_address(), audit_token=users.tokens
        )
        users.attach(server)
        return server

    serve("oms", settings.runtime, build)


if __name__ == "__main__":
    main()
