"""A reflection server that describes every API of the mesh, for grpcurl through the gateway.

Server reflection is one bidirectional stream per client, and a client asks one server about
every service, so Envoy cannot spread it over three backends that each know only their own
APIs. This process serves reflection from the descriptor set the transcoder uses, which holds
every service of the mesh; Envoy routes the reflection methods here and everything else to the
service that owns it. It serves no RPC of its own beyond health and reflection, so it has no
domain, policies or token checks, which is why it builds its gRPC server directly rather than
through ``common.server``.
"""

from __future__ import annotations

import logging
import signal
from concurrent import futures
from pathlib import Path
from types import FrameType

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.config import RuntimeSettings
from common.logs import configure_logging
from gateway import descriptors
from gateway.settings import MeshSettings

log = logging.getLogger("mesh.reflection")


def build_pool(descriptor_path: Path) -> tuple[descriptor_pool.DescriptorPool, list[str]]:
    """A descriptor pool of the whole descriptor set, and the mesh's service names in it."""
    descriptor_set = descriptors.load(descriptor_path)
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:
        pool.Add(file)
    return pool, [service.name for service in descriptors.services(descriptor_set)]


def create_reflection_server(
    address: str, *, descriptor_path: Path = descriptors.DESCRIPTOR_PATH
) -> tuple[grpc.Server, int]:
    """A server (not started) on ``address``; ``host:0`` picks a free port."""
    pool, names = build_pool(descriptor_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rpc"))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server, pool=pool)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return server, port


def main() -> None:
    runtime = RuntimeSettings.from_env()
    settings = MeshSettings.from_env()
    configure_logging("reflection", runtime.log_level)
    server, port = create_reflection_server(f"{settings.upstream_host}:{settings.reflection_port}")

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received, stopping", extra={"signal": signum})
        server.stop(runtime.grace_seconds)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log.info("serving", extra={"port": port})
    server.wait_for_termination()


if __name__ == "__main__":
    main()
