"""A reflection server that describes every API of the mesh, for grpcurl through the gateway.

Server reflection is one bidirectional stream per client, and a client asks one server about
every service, so Envoy cannot spread it over three backends that each know only their own
APIs. This process serves reflection from the descriptor set the transcoder uses, which holds
every service of the mesh; Envoy routes the reflection methods here and everything else to the
service that owns it. It serves no RPC of its own beyond health and reflection, so it has no
policies or token checks; it is built by the same factory as the services.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from google.protobuf import descriptor_pool

from common.blocking import Blocking
from common.config import RuntimeSettings
from common.server import MeshServer, create_server, serve
from gateway import descriptors
from gateway.settings import MeshSettings

DOMAIN = "reflection.mesh"


def build_pool(descriptor_path: Path) -> tuple[descriptor_pool.DescriptorPool, list[str]]:
    """A descriptor pool of the whole descriptor set, and the mesh's service names in it."""
    descriptor_set = descriptors.load(descriptor_path)
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:
        pool.Add(file)
    return pool, [service.name for service in descriptors.services(descriptor_set)]


def create_reflection_server(
    address: str,
    runtime: RuntimeSettings,
    *,
    descriptor_path: Path = descriptors.DESCRIPTOR_PATH,
) -> MeshServer:
    """A server (not started) on ``address``; ``host:0`` picks a free port.

    Call it in the serving loop.
    """
    pool, names = build_pool(descriptor_path)
    return create_server(
        address,
        domain=DOMAIN,
        services=[],
        policies={},
        verifier=None,
        settings=runtime,
        blocking=Blocking(1),
        reflection_pool=pool,
        described=names,
    )


def main() -> None:
    # Plaintext even with mutual TLS on: Envoy's sidecar in its pod, describing the public API.
    runtime = dataclasses.replace(RuntimeSettings.from_env(), tls=None)
    settings = MeshSettings.from_env()
    address = f"{settings.upstream_host}:{settings.reflection_port}"
    serve("reflection", runtime, lambda: create_reflection_server(address, runtime))


if __name__ == "__main__":
    main()
