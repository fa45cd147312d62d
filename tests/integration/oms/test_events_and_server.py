"""What the OMS reports beyond its replies: outbox events, health, and a policy per method."""

from __future__ import annotations

import inspect
import json

import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.db import Database
from oms.servicers import BRANCH_SERVICE, POLICIES, SCHEMA_SERVICE, BranchServicer, SchemaServicer
from oms.sql_store import outbox
from oms.v1 import branch_service_pb2 as bs
from oms.v1 import schema_service_pb2
from oms.v1 import schema_service_pb2 as ss
from tests.support.oms import object_type


def _events(settings):
    db = Database(settings.database_url)
    try:
        with db.read() as conn:
            rows = conn.execute(sa.select(outbox).order_by(outbox.c.seq)).all()
    finally:
        db.dispose()
    return [(r.type, r.subject, r.actor, json.loads(r.data)) for r in rows]


def test_every_change_is_reported_in_the_outbox(oms, oms_settings):
    oms.branch("feature")
    oms.create("feature", object_type("Employee"))
    oms.branches.ValidateBranch(bs.ValidateBranchRequest(branch="feature"), metadata=oms.admin)
    merged = oms.merge("feature")
    oms.schema.CommitChanges(
        ss.CommitChangesRequest(
            branch="main",
            message="describe",
            changes=[ss.Change(upsert={"object_type": object_type("Employee", description="x")})],
        ),
        metadata=oms.admin,
    )
    oms.branches.DeleteBranch(bs.DeleteBranchRequest(name="feature"), metadata=oms.admin)
    events = _events(oms_settings)
    assert [(t, s) for t, s, _, _ in events] == [
        ("oms.branch.created", "branches/feature"),
        ("oms.schema.created", "branches/feature/object-types/Employee"),
        ("oms.validation.passed", "branches/feature"),
        ("oms.branch.merged", "branches/main"),
        ("oms.schema.updated", "branches/main/object-types/Employee"),
        ("oms.branch.deleted", "branches/feature"),
    ]
    assert {actor for _, _, actor, _ in events} == {"admin"}
    merged_data = events[3][3]
    assert merged_data["outcome"] == "FAST_FORWARD"
    assert merged_data["commit"] == merged.commit.id


def test_health_reports_both_services(oms):
    stub = health_pb2_grpc.HealthStub(oms.channel)
    for name in (SCHEMA_SERVICE, BRANCH_SERVICE):
        status = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_every_method_has_an_access_policy():
    table = POLICIES
    for module, service in (
        (schema_service_pb2, SCHEMA_SERVICE),
        (bs, BRANCH_SERVICE),
    ):
        descriptor = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
        for method in descriptor.methods:
            policy = table[f"/{service}/{method.name}"]
            assert not policy.public and policy.permission
    assert table[f"/{SCHEMA_SERVICE}/ListLinkTypes"].permission == "schema:read"
    assert table[f"/{SCHEMA_SERVICE}/DeleteInterface"].permission == "schema:write"
    assert table[f"/{BRANCH_SERVICE}/MergeBranch"].permission == "branch:merge"


def test_every_rpc_is_a_coroutine_the_servicer_itself_defines():
    """Each RPC is found by its name in the source (none bound at import).

    None is left to the generated base class, which would answer UNIMPLEMENTED.
    """
    for servicer, module, service in (
        (SchemaServicer, schema_service_pb2, SCHEMA_SERVICE),
        (BranchServicer, bs, BRANCH_SERVICE),
    ):
        descriptor = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
        for method in descriptor.methods:
            assert method.name in vars(servicer), method.name
            assert inspect.iscoroutinefunction(vars(servicer)[method.name]), method.name
