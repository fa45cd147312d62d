"""``oms_read`` and ``gateway_validate`` through Envoy with 1 and 2 replicas of each service.

Three whole meshes, as ``mesh up`` runs them: SQLite with one process per service (the default),
then one and two replicas per service sharing a scratch database on the local PostgreSQL
(``--database-server``). On each, ``wrk`` drives ``GET /api/v1/schemas/main/object-types/{name}``
(a 20-property object type) and then ``GET /auth/validate`` for a fixed time; beside req/s,
p50 and p99, the share of a core Envoy, the OMS's or User Service's replicas together, and
PostgreSQL's server processes used meanwhile, which says what limits each on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import httpx
from google.protobuf import json_format

from bench._tools import BENCH_ENV, CpuMeter, Load, table, wait_for, wrk
from bench.oms_read import NAME, object_type
from gateway.mesh import Mesh, replica_name
from gateway.settings import MeshSettings
from tests.support.postgres import fresh_database

OMS_PATH = f"/api/v1/schemas/main/object-types/{NAME}"
ENV = {**os.environ, **BENCH_ENV}
VALIDATE_PATH = "/auth/validate"


def postgres_pids() -> list[int]:
    """PostgreSQL's server processes on this machine, to count their CPU beside the mesh's."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if "(postgres)" in stat.read_text():
                pids.append(int(stat.parent.name))
        except OSError:
            continue
    return pids


def measure(
    mesh: Mesh, path: str, service: str, token: str, *, seconds: float, connections: int
) -> tuple[Load, dict[str, float]]:
    """``wrk`` on ``path`` after a second of warm-up, with the CPU of each group of processes."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{mesh.endpoints.gateway_url}{path}"
    wait_for(url, headers=headers)
    wrk(url, seconds=1, connections=connections, headers=headers)
    replicas = [
        mesh.supervisor.pid(replica_name(service, i)) for i in range(mesh.settings.replicas)
    ]
    groups = {"envoy": [mesh.supervisor.pid("gateway")], service: replicas}
    groups["postgres"] = postgres_pids() if mesh.settings.database_url else []
    pids = {f"{group}/{pid}": pid for group, members in groups.items() for pid in members}
    meter = CpuMeter(pids)
    meter.start()
    load = wrk(url, seconds=seconds, connections=connections, headers=headers)
    used = meter.stop()
    if load.failed:
        raise SystemExit(f"{load.failed} requests to {path} failed")
    return load, {g: sum(v for k, v in used.items() if k.startswith(f"{g}/")) for g in groups}


def run(
    label: str, settings: MeshSettings, folder: Path, *, seconds: float, connections: int
) -> list[list[object]]:
    """Both paths on one mesh: a row each, with its CPU shares."""
    mesh = Mesh(settings, data_dir=folder, out=(folder / "mesh.log").open("w"), env=ENV)
    with mesh as endpoints, httpx.Client(base_url=endpoints.gateway_url, timeout=30) as client:
        login = client.post(
            "/auth/login", json={"username": "admin", "password": BENCH_ENV["MESH_ADMIN_PASSWORD"]}
        )
        token = login.json()["access_token"]
        body = json_format.MessageToDict(object_type(), preserving_proto_field_name=True)
        created = client.post(
            "/api/v1/schemas/main/object-types",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if created.status_code != 200:
            raise SystemExit(f"cannot create the object type: {created.text}")
        rows: list[list[object]] = []
        for name, path, service in (
            ("oms_read", OMS_PATH, "oms"),
            ("gateway_validate", VALIDATE_PATH, "users"),
        ):
            load, cpu = measure(
                mesh, path, service, token, seconds=seconds, connections=connections
            )
            rows.append(
                [
                    f"{name}, {label}",
                    load.requests_per_second,
                    load.p50_ms,
                    load.p99_ms,
                    cpu["envoy"],
                    cpu[service],
                    cpu["postgres"],
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--database-server", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args([] if argv is None else argv)
    options = {"seconds": args.seconds, "connections": args.connections}
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        folder = Path(scratch)
        (folder / "sqlite").mkdir()
        rows += run("SQLite, 1 process", MeshSettings.on_free_ports(), folder / "sqlite", **options)
        for replicas in (1, 2):
            with fresh_database(args.database_server, "bench_scale") as url:
                settings = MeshSettings.on_free_ports(replicas=replicas, database_url=url)
                (folder / f"pg{replicas}").mkdir()
                label = f"PostgreSQL, {replicas} replica{'s' if replicas > 1 else ''}"
                rows += run(label, settings, folder / f"pg{replicas}", **options)
    print(f"wrk, {args.connections} connections, {args.seconds:g} s per run; cores used meanwhile")
    header = ["", "req/s", "p50 ms", "p99 ms", "envoy", "service (all replicas)", "postgres"]
    print(table(sorted(rows, key=lambda row: str(row[0])), header))


if __name__ == "__main__":
    main(sys.argv[1:])
