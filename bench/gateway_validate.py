"""What the gateway costs: GET /auth/validate through Envoy against ValidateToken straight to the
User Service, in one run of a real mesh on loopback.

Each mode runs the same number of client threads for the same bounded time after a warm-up and
prints requests/s and p50/p99 latency; a third row (native gRPC through the gateway) separates
the cost of the extra hop from the cost of transcoding.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from gateway.mesh import Mesh
from gateway.settings import MeshSettings
from users.v1 import auth_service_pb2, auth_service_pb2_grpc

THREADS = 4
WARMUP_SECONDS = 1.0
SECONDS = 5.0
ADMIN_PASSWORD = "bench-admin-password"


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def _drive(name: str, make_call: Callable[[], Callable[[], None]]) -> Result:
    """Run ``THREADS`` threads, each calling its own ``make_call()`` for ``SECONDS``."""
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    start_gate = threading.Barrier(THREADS + 1)

    def worker(index: int) -> None:
        call = make_call()
        until = time.perf_counter() + WARMUP_SECONDS
        while time.perf_counter() < until:
            call()
        start_gate.wait()
        until = time.perf_counter() + SECONDS
        mine = latencies[index]
        while True:
            began = time.perf_counter()
            if began >= until:
                return
            call()
            mine.append(time.perf_counter() - began)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = [x for chunk in latencies for x in chunk]
    return Result(name, len(merged), elapsed, merged)


def _rest(url: str, token: str) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

        def call() -> None:
            response = client.get("/auth/validate")
            if response.status_code != 200:
                raise RuntimeError(f"validate failed: {response.status_code} {response.text}")

        return call

    return make


def _grpc(target: str, token: str) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        stub = auth_service_pb2_grpc.AuthServiceStub(grpc.insecure_channel(target))
        metadata = (("authorization", f"Bearer {token}"),)
        request = auth_service_pb2.ValidateTokenRequest()

        def call() -> None:
            if not stub.ValidateToken(request, metadata=metadata, timeout=10).valid:
                raise RuntimeError("validate said invalid")

        return call

    return make


def main() -> None:
    settings = MeshSettings.on_free_ports()
    env = {
        **os.environ,
        "MESH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MESH_PASSWORD_HASH_PROFILE": "test",
        "MESH_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as data:
        folder = Path(data)
        with (
            (folder / "mesh.log").open("w") as log,
            Mesh(settings, data_dir=folder, out=log, env=env) as endpoints,
        ):
            token = httpx.post(
                f"{endpoints.gateway_url}/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=10,
            ).json()["access_token"]
            results = [
                _drive("REST via gateway", _rest(endpoints.gateway_url, token)),
                _drive("gRPC via gateway", _grpc(endpoints.grpc_targets["gateway"], token)),
                _drive("gRPC direct", _grpc(endpoints.grpc_targets["users"], token)),
            ]
    print(f"ValidateToken, {THREADS} client threads, {SECONDS:g} s each, loopback")
    print(f"{'mode':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9}")
    for r in results:
        p50, p99 = r.percentile(50), r.percentile(99)
        print(f"{r.name:<18} {r.rate:>8.0f} {p50:>8.2f} {p99:>8.2f} {r.requests:>9}")
    rest, _, direct = results
    print(
        "gateway overhead (REST vs direct): "
        f"p50 {rest.percentile(50) - direct.percentile(50):+.2f} ms, "
        f"p99 {rest.percentile(99) - direct.percentile(99):+.2f} ms, "
        f"throughput {rest.rate / direct.rate:.0%} of direct"
    )


if __name__ == "__main__":
    main()
