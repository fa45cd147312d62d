"""Two replicas of each service on the local PostgreSQL, behind one Envoy, as ``mesh up`` runs them.

Under mixed REST traffic one replica of each service is killed with SIGKILL and later started
again: only writes that are not idempotent may fail (those in flight at the kill), no
acknowledged write is lost, every event reaches the audit log exactly once and the chain stays
intact. A session revoked on one User Service replica is refused by an OMS replica that follows
the other, within 100 ms.
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import httpx
import pytest

from gateway.mesh import Mesh, replica_name, serving
from gateway.settings import MeshSettings
from oms.v1 import branch_service_pb2, branch_service_pb2_grpc
from tests.support.mesh import (
    ADMIN_PASSWORD,
    EMPLOYEE,
    RunningMesh,
    bearer,
    login,
    running_mesh,
)
from tests.support.postgres import scratch_database
from tests.support.waiting import eventually
from users.v1 import auth_service_pb2, auth_service_pb2_grpc

pytestmark = pytest.mark.postgres

SERVICES = ("users", "oms", "audit")
CLIENTS = 3
TRAFFIC_SECONDS = 20.0
KILL_AT, RESTART_AT = 5.0, 11.0


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    data = tmp_path_factory.mktemp("replicas")
    with scratch_database("replicas") as url:
        settings = MeshSettings.on_free_ports(replicas=2, database_url=url)
        with running_mesh(settings, data, ready_timeout=120) as running:
            yield running


def _admin(replicated: RunningMesh) -> dict[str, str]:
    with httpx.Client(base_url=replicated.url, timeout=10) as client:
        return bearer(str(login(client, "admin", ADMIN_PASSWORD)["access_token"]))


def test_a_revocation_on_one_users_replica_is_enforced_by_an_oms_replica_following_the_other(
    replicated: RunningMesh,
) -> None:
    """Measured on the shared two-core machine: 1.6 to 46 ms from Logout's answer to refusal.

    Over three runs of five sessions each, the medians were 2.6 to 9.7 ms.

    The bound is the issue's 100 ms, on the median of five sessions so that one scheduling
    hiccup of a loaded machine does not decide it; the slowest must still beat the one-second
    poll that would stand in for the announcement if it were lost.
    """
    targets = replicated.endpoints.replica_targets
    # Replica 2 of the OMS follows replica 2 of the User Service first (mesh.py: _target).
    with (
        grpc.insecure_channel(targets["users"]) as users_channel,
        grpc.insecure_channel(targets["oms-2"]) as oms_channel,
    ):
        auth = auth_service_pb2_grpc.AuthServiceStub(users_channel)
        branches = branch_service_pb2_grpc.BranchServiceStub(oms_channel)
        delays = []
        for _ in range(5):
            token = auth.Login(
                auth_service_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD),
                timeout=10,
            ).access_token
            metadata = (("authorization", f"Bearer {token}"),)
            branches.ListBranches(branch_service_pb2.ListBranchesRequest(), metadata=metadata)
            auth.Logout(auth_service_pb2.LogoutRequest(), metadata=metadata, timeout=10)
            revoked_at = time.monotonic()
            while True:
                try:
                    branches.ListBranches(
                        branch_service_pb2.ListBranchesRequest(), metadata=metadata, timeout=5
                    )
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc
                    break
                assert time.monotonic() - revoked_at < 5, "the revocation never arrived"
            delays.append(time.monotonic() - revoked_at)
    print(f"revocation enforced across replicas after {[round(d * 1000, 1) for d in delays]} ms")
    assert statistics.median(delays) < 0.1
    assert max(delays) < 1.0


@dataclass
class Outcomes:
    """What the clients saw, per kind of call."""

    ok: collections.Counter[str] = field(default_factory=collections.Counter)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    branches: list[str] = field(default_factory=list)
    """Branches whose creation was acknowledged."""
    events: list[str] = field(default_factory=list)
    """Ids of the events whose publication was acknowledged."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, response: httpx.Response | Exception) -> bool:
        ok = isinstance(response, httpx.Response) and response.status_code == 200
        with self.lock:
            (self.ok if ok else self.failed)[kind] += 1
            if not ok:
                detail = response.text if isinstance(response, httpx.Response) else response
                self.failures.append(f"{kind}: {detail!s:.200}")
        return ok


def _traffic(
    url: str, admin: dict[str, str], outcomes: Outcomes, stop: threading.Event, worker: str
) -> None:
    """Reads of three services, branch creations (not idempotent), event publications."""
    counter = itertools.count()
    calls: list[tuple[str, Callable[[httpx.Client, int], httpx.Response]]] = [
        ("read_branches", lambda c, n: c.get("/api/v1/branches", headers=admin)),
        (
            "read_type",
            lambda c, n: c.get("/api/v1/schemas/main/object-types/Employee", headers=admin),
        ),
        ("validate", lambda c, n: c.get("/auth/validate", headers=admin)),
        ("read_events", lambda c, n: c.get("/api/v2/query/events", headers=admin)),
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            n = next(counter)
            for kind, call in calls:
                try:
                    outcomes.record(kind, call(client, n))
                except httpx.HTTPError as exc:
                    outcomes.record(kind, exc)
            name = f"{worker}-{n}"
            try:
                created = client.post("/api/v1/branches", headers=admin, json={"name": name})
            except httpx.HTTPError as exc:
                outcomes.record("create_branch", exc)
            else:
                if outcomes.record("create_branch", created):
                    with outcomes.lock:
                        outcomes.branches.append(name)
            event = {
                "id": str(uuid.uuid4()),
                "source": "/e2e-replicas",
                "type": "oms.schema.updated",
                "actor": "admin",
                "data": {"n": n},
            }
            try:
                published = client.post("/api/v2/events", headers=admin, json=event)
            except httpx.HTTPError as exc:
                outcomes.record("publish_event", exc)
            else:
                if outcomes.record("publish_event", published):
                    with outcomes.lock:
                        outcomes.events.append(event["id"])


def _all(client: httpx.Client, admin: dict[str, str], path: str, **filters: str) -> list[dict]:
    """Every item of a list, page after page; the list's field is the path's last word."""
    found: list[dict] = []
    token = ""
    while True:
        page = client.get(
            path, headers=admin, params={**filters, "page_size": 1000, "page_token": token}
        )
        assert page.status_code == 200, page.text
        found.extend(page.json()[path.rsplit("/", 1)[-1]])
        token = page.json()["next_page_token"]
        if not token:
            return found


def _all_events(client: httpx.Client, admin: dict[str, str], **filters: str) -> list[dict]:
    return _all(client, admin, "/api/v2/query/events", **filters)


def _under_traffic(replicated: RunningMesh, disrupt: Callable[[Mesh], None]) -> Outcomes:
    """Three clients' mixed traffic through the gateway for the time ``disrupt`` takes."""
    admin = _admin(replicated)
    with httpx.Client(base_url=replicated.url, timeout=10) as client:
        client.post("/api/v1/schemas/main/object-types", headers=admin, json=EMPLOYEE)
    outcomes = Outcomes()
    stop = threading.Event()
    run = uuid.uuid4().hex[:6]
    workers = [
        threading.Thread(target=_traffic, args=(replicated.url, admin, outcomes, stop, f"{run}{w}"))
        for w in range(CLIENTS)
    ]
    for worker in workers:
        worker.start()
    try:
        disrupt(replicated.mesh)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    print(f"calls answered: {dict(outcomes.ok)}; failed: {dict(outcomes.failed)}")
    return outcomes


def _wait_serving(replicated: RunningMesh, names: list[str]) -> None:
    targets = replicated.endpoints.replica_targets
    eventually(lambda: all(serving(targets[n]) for n in names), timeout=60, what="a restart")


def test_killing_a_replica_of_each_service_under_traffic_loses_nothing(
    replicated: RunningMesh,
) -> None:
    victims = [replica_name(service, 1) for service in SERVICES]

    def kill_and_restart(mesh: Mesh) -> None:
        time.sleep(KILL_AT)
        for victim in victims:
            os.kill(mesh.supervisor.pid(victim), signal.SIGKILL)
        time.sleep(RESTART_AT - KILL_AT)
        for victim in victims:
            mesh.supervisor.restart(victim)
        _wait_serving(replicated, victims)
        time.sleep(max(0.0, TRAFFIC_SECONDS - RESTART_AT - 2))

    outcomes = _under_traffic(replicated, kill_and_restart)
    admin = _admin(replicated)
    failed_writes = outcomes.failed["create_branch"]
    print(f"non-idempotent writes failed at the kill: {failed_writes}")
    # Only writes that are not idempotent may fail, the ones in flight at the kill.
    assert set(outcomes.failed) <= {"create_branch"}, outcomes.failures
    # At most one call in flight per client and killed service.
    assert failed_writes <= CLIENTS * len(victims), outcomes.failures
    assert outcomes.ok["create_branch"] > 20 and outcomes.ok["read_type"] > 20

    with httpx.Client(base_url=replicated.url, timeout=30) as client:
        # No acknowledged write is lost.
        for name in outcomes.branches:
            assert client.get(f"/api/v1/branches/{name}", headers=admin).status_code == 200
        stored = {e["id"] for e in _all_events(client, admin, source="/e2e-replicas")}
        assert set(outcomes.events) <= stored
        # Every branch that exists (acknowledged or not) has its event, exactly once, once
        # the outboxes of the killed replicas are delivered by the survivors.
        existing = {b["name"] for b in _all(client, admin, "/api/v1/branches")} - {"main"}

        def branch_events() -> list[dict] | None:
            found = _all_events(client, admin, type="oms.branch.created")
            mine = [e for e in found if e["data"]["branch"] in existing]
            return mine if len(mine) >= len(existing) else None

        delivered = eventually(branch_events, timeout=60, what="every branch's event")
        assert sorted(e["data"]["branch"] for e in delivered) == sorted(existing)
        everything = _all_events(client, admin)
        keys = [(e["source"], e["id"]) for e in everything]
        assert len(keys) == len(set(keys)), "an event was recorded twice"
        sequences = [int(e["sequence"]) for e in everything]
        assert sorted(sequences) == list(range(1, len(sequences) + 1))
        verified = client.get("/api/v2/events:verify", headers=admin)
        assert verified.status_code == 200, verified.text
        assert verified.json()["intact"] is True


def _balanced(replicated: RunningMesh, name: str) -> bool:
    """Whether Envoy balances over replica ``name`` again: its health check passed."""
    target = replicated.endpoints.replica_targets[name]
    clusters = httpx.get(f"{replicated.endpoints.admin_url}/clusters", timeout=5).text
    return f"::{target}::health_flags::healthy" in clusters


def test_a_rolling_restart_under_traffic_fails_no_call(replicated: RunningMesh) -> None:
    """SIGTERM drains each replica in turn while Envoy sends its calls to the other.

    As a rolling restart should, the next replica goes only once the gateway balances over
    the last one again (Envoy's health check saw it serving, a second at most).
    """
    replicas = [replica_name(service, i) for service in SERVICES for i in range(2)]

    def roll(mesh: Mesh) -> None:
        time.sleep(1)
        for name in replicas:
            mesh.supervisor.restart(name)  # SIGTERM, wait for the exit, start again
            eventually(
                functools.partial(_balanced, replicated, name), timeout=60, what=f"{name} back"
            )

    outcomes = _under_traffic(replicated, roll)
    assert not outcomes.failed, [f for f in outcomes.failures if "BRANCH_EXISTS" not in f]
    assert outcomes.ok["create_branch"] > 20
